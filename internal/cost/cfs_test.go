package cost

import (
	"math"
	"testing"
)

func newCFS(quotaMS, periodMS, phaseMS float64) *cfs {
	return &cfs{quota: quotaMS / 1e3, period: periodMS / 1e3, phase: phaseMS / 1e3, k: math.MinInt64}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// A device with a fresh period runs at full speed until its quota is spent,
// then waits for the next period.
func TestCFSRun(t *testing.T) {
	c := newCFS(2, 5, 0)
	if got := c.run(0, 1e-3); !near(got, 1e-3) {
		t.Errorf("1 ms of CPU in a fresh period ended at %v, want 1 ms", got)
	}
	c = newCFS(2, 5, 0)
	// 2 ms in [0, 2], throttled to 5; 2 ms in [5, 7], throttled to 10; 0.5.
	if got := c.run(0, 4.5e-3); !near(got, 10.5e-3) {
		t.Errorf("4.5 ms of CPU ended at %v, want 10.5 ms", got)
	}
	// The quota of the period it ended in is partly spent: 1.5 ms left,
	// so 2 ms more take until the next period's 0.5 ms.
	if got := c.run(10.5e-3, 2e-3); !near(got, 15.5e-3) {
		t.Errorf("2 more ms ended at %v, want 15.5 ms", got)
	}
	// A period's quota does not carry over: starting 1 ms before a period
	// boundary with a full quota runs 1 ms, then 2 ms from the boundary.
	c = newCFS(2, 5, 0)
	if got := c.run(4e-3, 3e-3); !near(got, 7e-3) {
		t.Errorf("3 ms from 4 ms ended at %v, want 7 ms", got)
	}
	// Long work runs at the quota's fraction of a core.
	c = newCFS(2, 5, 1.3)
	if got := c.run(0, 0.4); math.Abs(got-1.0) > 5e-3 {
		t.Errorf("400 ms of CPU at 0.4 of a core ended at %v, want about 1 s", got)
	}
}

// A device that spent its quota cannot act until the next period; CPU spent
// while waiting counts against the quota.
func TestCFSReadyUse(t *testing.T) {
	c := newCFS(2, 5, 0)
	c.run(0, 2e-3)
	if got := c.ready(3e-3); !near(got, 5e-3) {
		t.Errorf("after the quota is spent, ready at %v, want 5 ms", got)
	}
	c = newCFS(2, 5, 0)
	c.use(1e-3, 1.5e-3)
	if got := c.run(1e-3, 1e-3); !near(got, 5.5e-3) {
		t.Errorf("after 1.5 ms used receiving, 1 ms of work ended at %v, want 5.5 ms (0.5 now, 0.5 after the period)", got)
	}
}
