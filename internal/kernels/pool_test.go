package kernels

import (
	"testing"
	"time"
)

// spinWork is about n cycles of dependent work.
func spinWork(n int) float32 {
	var s float32
	for i := 0; i < n; i++ {
		s += float32(i) * 0.5
	}
	return s
}

var sinkPar [2]float32

// BenchmarkPoolParallel compares two chunks of work run in sequence and on
// a 2-thread pool, by the fastest iteration.
func BenchmarkPoolParallel(b *testing.B) {
	for _, n := range []int{20000, 100000, 1000000} {
		b.Run("seq", func(b *testing.B) {
			best := time.Hour
			for b.Loop() {
				t0 := time.Now()
				sinkPar[0] = spinWork(n)
				sinkPar[1] = spinWork(n)
				best = min(best, time.Since(t0))
			}
			b.ReportMetric(float64(best.Microseconds()), "best-us")
		})
		b.Run("par", func(b *testing.B) {
			p := NewPool(2)
			best := time.Hour
			for b.Loop() {
				t0 := time.Now()
				p.Parallel(2, func(lo, hi int) { sinkPar[lo] = spinWork(n) })
				best = min(best, time.Since(t0))
			}
			b.ReportMetric(float64(best.Microseconds()), "best-us")
		})
	}
}
