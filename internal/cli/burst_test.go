package cli

import (
	"testing"

	"github.com/iop-edge/iop/internal/coordinator"
	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/testbed"
)

// An unprofiled local run plans with the burst its emulation lets through:
// the tbf bucket's data bytes on the testbed, the shaper's bucket on
// loopback, none unshaped.
func TestEmulatedBurst(t *testing.T) {
	rate := 100e6 / 8
	if b, tbf := emulatedBurst(coordinator.EmulationNetns, rate), testbed.TBFBurst(rate); b >= tbf || b < 0.9*tbf {
		t.Errorf("netns: %g bytes for a %g-byte bucket of packets", b, tbf)
	}
	if b := emulatedBurst(coordinator.EmulationLoopback, rate); b != shaper.DefaultBurst {
		t.Errorf("loopback: %g bytes, want the shaper's %d", b, shaper.DefaultBurst)
	}
	if b := emulatedBurst(coordinator.EmulationNone, rate) + emulatedBurst(coordinator.EmulationNetns, 0); b != 0 {
		t.Errorf("unshaped: %g bytes, want 0", b)
	}
}
