// Package kernels holds the numeric kernels the operators run on: a thread
// pool, single-precision GEMM, convolution and activation functions. It works
// on flat float32 slices and knows nothing of graphs or ONNX.
package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
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

// Parallel splits [0,n) into contiguous chunks and runs fn on each on up
// to Threads() threads, returning when all are done. A nil pool runs
// fn(0, n) inline.
//
// The chunks (a few per thread when n allows) are claimed dynamically: on a
// shared machine a thread that starts late, or runs slower, takes fewer
// chunks instead of holding up the others, and the calling thread alone
// completes the loop if no other thread gets to run.
func (p *Pool) Parallel(n int, fn func(lo, hi int)) {
	p.parallel(n, chunksPerThread*p.Threads(), fn)
}

// parallel is Parallel with at most the given number of chunks.
func (p *Pool) parallel(n, chunks int, fn func(lo, hi int)) {
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
	chunks = max(t, min(n, chunks))
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(chunks)
	work := func() {
		for {
			c := int(next.Add(1)) - 1
			if c >= chunks {
				return
			}
			fn(c*n/chunks, (c+1)*n/chunks)
			wg.Done()
		}
	}
	for i := 1; i < t; i++ {
		go work()
	}
	// The new goroutines sit in this P's runnext slot, which idle Ps steal
	// only after tens of microseconds: loops shorter than that would run
	// serially. Yielding puts the caller on the global run queue, where the
	// P woken for the new goroutines picks it up at once, while this P runs
	// the first new goroutine.
	runtime.Gosched()
	work()
	wg.Wait()
}

// chunksPerThread is how many chunks per thread Parallel makes.
const chunksPerThread = 4

// Close releases the pool's threads.
func (p *Pool) Close() {}
