package worker

import (
	"runtime"
	"runtime/debug"
)

// pageSize is the granularity at which the kernel backs memory.
const pageSize = 4096

// settleHeap returns what deploying left behind to the OS and then touches,
// once, the pages the heap will grow into between two collections in the
// steady state: gcPercent of the live heap (weights, packed weights and
// the runner's arena), at most limit − live when the worker has a memory
// limit (0: none). It returns the bytes touched.
//
// Without it every request after a deployment allocates from pages the
// kernel must fault in again — on the testbed's virtual machines 14 µs per
// 4 KiB page, 3.5 ns a byte, as much CPU as the network's — until the
// collector first recycles the heap: AlexNet's first 24 requests on one
// device took 60–73 ms, the rest 47–56 (docs/VALIDATION.md, item 23). The
// resident set the model predicts (cost.PeakMemoryBytes: live heap plus
// the collector's headroom) is then the worker's from its first request.
func settleHeap(gcPercent int, limit int64) int64 {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := int64(ms.HeapAlloc)
	h := live * int64(gcPercent) / 100
	if limit > 0 {
		h = max(0, min(h, limit-live))
	}
	if h < pageSize {
		return 0
	}
	b := make([]byte, h)
	for i := 0; i < len(b); i += pageSize {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	b = nil
	// Free the block without returning its pages to the OS: the
	// allocator hands them out again, already resident.
	runtime.GC()
	return h
}
