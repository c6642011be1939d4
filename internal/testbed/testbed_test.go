package testbed

import (
	"strings"
	"testing"
)

func TestCPUWarning(t *testing.T) {
	cases := []struct {
		c    Config
		cpus int
		warn bool
	}{
		{Config{Devices: 4, Limits: Limits{CPUQuota: 0.25}}, 2, false},
		{Config{Devices: 4, Limits: Limits{CPUQuota: 0.45}}, 2, true},
		{Config{Devices: 2}, 4, false}, // no quota: a core each
		{Config{Devices: 3}, 4, true},  // three full cores on four CPUs
		{Config{Devices: 2, Limits: Limits{CPUQuota: 0.5}, PerDevice: []Limits{{CPUQuota: 1}}}, 2, true},
	}
	for i, c := range cases {
		w := CPUWarning(c.c, c.cpus)
		if (w != "") != c.warn {
			t.Errorf("case %d: warning %q, want one: %v", i, w, c.warn)
		}
		if w != "" && !strings.Contains(w, "half the CPUs") {
			t.Errorf("case %d: warning %q does not say the limit", i, w)
		}
	}
}
