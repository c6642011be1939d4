package profile

import (
	"context"
	"math"
	"testing"
)

func TestMeasureOps(t *testing.T) {
	r, err := MeasureOps(context.Background(), OpsRequest{Threads: 1, BudgetMS: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Cases {
		t.Logf("%-12s %-32s %8.1f MFLOP %4d runs %8.3f ms %7.2f GFLOP/s", c.Class, c.Name, float64(c.FLOPs)/1e6, c.Runs, c.MS, c.GFLOPS)
	}
	t.Logf("by class: %v (kernel %s, %d threads, %.0f ms)", r.ByClass, r.Kernel, r.Threads, r.WallMS)
	for _, c := range Classes {
		if r.ByClass[string(c)] <= 0 {
			t.Errorf("class %s: no speed", c)
		}
	}
	if r.GFLOPS != r.ByClass["conv"] {
		t.Errorf("GFLOPS %g, want the conv speed %g", r.GFLOPS, r.ByClass["conv"])
	}
}

func TestFitTime(t *testing.T) {
	// Layers timed exactly by t = flops/100e9 + bytes/20e9.
	fs := []float64{2e8, 4e7, 1e9, 3e7}
	bs := []float64{2e6, 6e6, 4e6, 1e7}
	ts := make([]float64, len(fs))
	for i := range fs {
		ts[i] = fs[i]/100e9 + bs[i]/20e9
	}
	a, b := FitTime(fs, bs, ts)
	if math.Abs(1/a-100e9) > 1e6 || math.Abs(1/b-20e9) > 1e6 {
		t.Errorf("fit %.4g FLOP/s, %.4g B/s; want 1e11, 2e10", 1/a, 1/b)
	}
	// One arithmetic intensity: no memory term, flops over time.
	a, b = FitTime([]float64{1e8, 2e8, 4e8}, []float64{1e6, 2e6, 4e6}, []float64{1e-3, 2e-3, 4e-3})
	if b != 0 || math.Abs(1/a-1e11) > 1e6 {
		t.Errorf("collinear fit %.4g FLOP/s, b=%g; want 1e11 and no memory term", 1/a, b)
	}
}
