// Package kernels holds the numeric kernels the operators run on: a thread
// pool, single-precision GEMM, convolution and activation functions. It works
// on flat float32 slices and knows nothing of graphs or ONNX.
package kernels

import (
	"runtime"
	"sync"
)

// Pool runs data-parallel loops on a fixed number of threads.
type Pool struct {
	threads int
}

// NewPool returns a pool of the given number of threads (<=0: GOMAXPROCS).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &Pool{threads: threads}
}

// Threads is the number of threads loops are split over.
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

// Parallel splits [0,n) into at most Threads() contiguous chunks and runs fn
// on each, returning when all are done. A nil pool runs fn(0, n) inline.
func (p *Pool) Parallel(n int, fn func(lo, hi int)) {
	t := p.Threads()
	if t > n {
		t = n
	}
	if t <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(t - 1)
	for i := 1; i < t; i++ {
		lo, hi := i*n/t, (i+1)*n/t
		go func() { defer wg.Done(); fn(lo, hi) }()
	}
	// The new goroutines sit in this P's runnext slot, which idle Ps steal
	// only after tens of microseconds: loops shorter than that would run
	// serially. Yielding puts the caller on the global run queue, where the
	// P woken for the new goroutines picks it up at once, while this P runs
	// the first new goroutine.
	runtime.Gosched()
	fn(0, n/t)
	wg.Wait()
}

// Close releases the pool's threads.
func (p *Pool) Close() {}
