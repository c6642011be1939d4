package worker

import (
	"slices"
	"testing"
)

func TestSteadyEnv(t *testing.T) {
	for _, c := range []struct {
		in, want []string
		changed  bool
	}{
		{[]string{"A=1"}, []string{"A=1", "GODEBUG=" + SteadySysmonSetting}, true},
		{[]string{"GODEBUG=gctrace=1", "B=2"}, []string{"GODEBUG=gctrace=1," + SteadySysmonSetting, "B=2"}, true},
		{[]string{"GODEBUG="}, []string{"GODEBUG=" + SteadySysmonSetting}, true},
		{[]string{"GODEBUG=gctrace=1,schedtrace=0"}, []string{"GODEBUG=gctrace=1,schedtrace=0"}, false},
		{[]string{"GODEBUG=a=1", "GODEBUG=b=2"}, []string{"GODEBUG=a=1," + SteadySysmonSetting}, true},
	} {
		got, changed := steadyEnv(c.in)
		if changed != c.changed || !slices.Equal(got, c.want) {
			t.Errorf("steadyEnv(%q) = %q, %v; want %q, %v", c.in, got, changed, c.want, c.changed)
		}
	}
}
