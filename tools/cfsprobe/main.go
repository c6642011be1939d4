// Command cfsprobe measures how the kernel's CFS bandwidth limit lets a
// thread run: run it inside a cgroup with a CPU quota (tools/cfsprobe.sh
// does that). What it printed on the testbed's kernel, and what that means
// for the cost model's CFS simulation (internal/cost/cfs.go), is in
// docs/VALIDATION.md (session 8).
//
//	cfsprobe spin [-d 2s]          one thread spinning: how long it runs and stalls
//	cfsprobe idle [-cpu 1,2,4,8]   bursts of CPU work after 20 ms idle: wall time of each
//	cfsprobe sync [-cpu 4,8]       bursts started on every 50 ms boundary of the clock
//	                               (several processes at once: synchronized devices)
//
// "CPU" here is the thread's own running time: the wall time it spends
// between gaps shorter than 50 µs (a gap of more is time the kernel did not
// run it); spin's stalls are the gaps of more than 0.2 ms.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// gap: a pause longer than this is time the kernel did not run the
// thread; stall: a pause longer than this is the CFS limit (interrupts and
// the like take well under 0.2 ms).
const (
	gap   = 50 * time.Microsecond
	stall = 200 * time.Microsecond
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cfsprobe spin|idle|sync [flags]")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dur := fs.Duration("d", 2*time.Second, "spin: how long")
	cpus := fs.String("cpu", "1,2,3,4,6,8,12", "idle, sync: burst sizes in ms of CPU")
	n := fs.Int("n", 40, "idle, sync: bursts per size")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "spin":
		spin(*dur)
	case "idle", "sync":
		for _, f := range strings.Split(*cpus, ",") {
			ms, err := strconv.ParseFloat(f, 64)
			if err != nil || ms <= 0 {
				fmt.Fprintf(os.Stderr, "cfsprobe: bad burst %q\n", f)
				os.Exit(2)
			}
			x := time.Duration(ms * float64(time.Millisecond))
			var w []float64
			for i := 0; i < *n; i++ {
				if os.Args[1] == "idle" {
					time.Sleep(20 * time.Millisecond)
				} else {
					time.Sleep(time.Until(time.Now().Truncate(50 * time.Millisecond).Add(50 * time.Millisecond)))
				}
				start := time.Now()
				burst(x)
				w = append(w, ms1(time.Since(start)))
			}
			fmt.Printf("%s %g ms of CPU: wall %s\n", os.Args[1], ms, stats(w))
		}
	default:
		fmt.Fprintf(os.Stderr, "cfsprobe: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

// burst runs until the thread has run for x.
func burst(x time.Duration) {
	last := time.Now()
	var ran time.Duration
	for ran < x {
		now := time.Now()
		if d := now.Sub(last); d < gap {
			ran += d
		}
		last = now
	}
}

func spin(dur time.Duration) {
	t0 := time.Now()
	last, from := t0, t0
	var runs, stalls []float64
	var ran time.Duration
	for time.Since(t0) < dur {
		now := time.Now()
		d := now.Sub(last)
		if d > stall {
			runs, stalls = append(runs, ms1(last.Sub(from))), append(stalls, ms1(d))
			from = now
		}
		if d < gap {
			ran += d
		}
		last = now
	}
	fmt.Printf("spin: runs %s\n", stats(runs))
	fmt.Printf("spin: stalls %s\n", stats(stalls))
	fmt.Printf("spin: share %.3f of a core\n", ran.Seconds()/time.Since(t0).Seconds())
}

func ms1(d time.Duration) float64 { return d.Seconds() * 1e3 }

func stats(v []float64) string {
	if len(v) == 0 {
		return "none"
	}
	sort.Float64s(v)
	s := 0.0
	for _, x := range v {
		s += x
	}
	q := func(f float64) float64 { return v[int(f*float64(len(v)-1))] }
	return fmt.Sprintf("n %d mean %.2f ms (p10 %.2f, p50 %.2f, p90 %.2f, max %.2f)", len(v), s/float64(len(v)), q(.1), q(.5), q(.9), v[len(v)-1])
}
