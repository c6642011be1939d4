package worker

import (
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
)

// minorFaults is the process's page faults served without I/O so far.
func minorFaults(t *testing.T) int64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// allocFaults allocates bytes in 256 KiB blocks (a received activation
// slice), writes every page and returns the page faults that took.
func allocFaults(t *testing.T, bytes int) int64 {
	t.Helper()
	var keep [][]byte
	f0 := minorFaults(t)
	for n := 0; n < bytes; n += 256 << 10 {
		b := make([]byte, 256<<10)
		for i := 0; i < len(b); i += pageSize {
			b[i] = 1
		}
		keep = append(keep, b)
	}
	f := minorFaults(t) - f0
	runtime.KeepAlive(keep)
	return f
}

// After settleHeap, what requests allocate up to the collector's headroom
// comes from resident pages; after the FreeOSMemory alone that the worker
// did before, every page of it faulted in.
func TestSettleHeapPrefaults(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	live := make([]byte, 128<<20) // the weights
	for i := 0; i < len(live); i += pageSize {
		live[i] = 1
	}
	alloc := 8 << 20 // well inside the 12.8 MiB headroom: no collection
	pages := int64(alloc / pageSize)

	debug.FreeOSMemory()
	cold := allocFaults(t, alloc)

	if h := settleHeap(10, 0); h < int64(alloc) {
		t.Fatalf("settleHeap touched %d bytes, want at least %d (10%% of a 128 MiB heap)", h, alloc)
	}
	warm := allocFaults(t, alloc)
	runtime.KeepAlive(live)
	t.Logf("page faults for %d pages: %d after FreeOSMemory, %d after settleHeap", pages, cold, warm)
	if cold < pages/2 {
		t.Skipf("allocating %d fresh pages faulted only %d times: this kernel backs them another way", pages, cold)
	}
	if warm > pages/10 {
		t.Errorf("after settleHeap, allocating %d pages faulted %d times (want at most %d)", pages, warm, pages/10)
	}
}

// With a memory limit the headroom stops at the limit.
func TestSettleHeapLimit(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	live := make([]byte, 64<<20)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	limit := int64(ms.HeapAlloc) + 1<<20
	if h := settleHeap(10, limit); h > 2<<20 {
		t.Errorf("settleHeap with 1 MiB under the limit touched %d bytes", h)
	}
	runtime.KeepAlive(live)
}
