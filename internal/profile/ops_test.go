package profile

import (
	"context"
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
