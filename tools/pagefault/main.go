//go:build linux

// Command pagefault measures what the kernel takes to back a fresh page of
// anonymous memory: it maps a region, writes one byte per 4 KiB page
// (every write faults a page in), writes the whole region again (no
// faults: the memory's own speed), returns the pages (MADV_DONTNEED) and
// writes one byte per page again. On the testbed's virtual machines a
// fault costs 14 µs (docs/VALIDATION.md, item 23).
//
//	go run ./tools/pagefault [-mib 64] [-rounds 4]
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

const page = 4096

func main() {
	mib := flag.Int("mib", 64, "region size in MiB")
	rounds := flag.Int("rounds", 4, "rounds")
	flag.Parse()
	n := *mib << 20
	pages := float64(n / page)
	touch := func(b []byte) time.Duration {
		t := time.Now()
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		return time.Since(t)
	}
	for r := 0; r < *rounds; r++ {
		b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pagefault:", err)
			os.Exit(1)
		}
		fresh := touch(b)
		t := time.Now()
		for i := range b {
			b[i] = 2
		}
		warm := time.Since(t)
		if err := syscall.Madvise(b, syscall.MADV_DONTNEED); err != nil {
			fmt.Fprintln(os.Stderr, "pagefault:", err)
			os.Exit(1)
		}
		again := touch(b)
		fmt.Printf("fresh page %.2f µs, warm write %.2f µs per page (%.1f GB/s), after MADV_DONTNEED %.2f µs\n",
			fresh.Seconds()/pages*1e6, warm.Seconds()/pages*1e6, float64(n)/warm.Seconds()/1e9, again.Seconds()/pages*1e6)
		syscall.Munmap(b)
	}
}
