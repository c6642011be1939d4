package worker

import (
	"strings"
)

// SteadySysmonSetting is the GODEBUG setting that keeps the Go runtime's
// sysmon thread out of its deep sleep, with which the worker runs by
// default (see SteadySysmon).
//
// sysmon sleeps 20 µs between rounds, doubling after 50 idle rounds up to
// 10 ms, and goes into a deep sleep when every P is idle. Its first round
// after a goroutine enters a system call from that deep sleep starts again
// at 20 µs. A worker of a partitioned plan goes idle and wakes for a
// socket read at every exchange, so sysmon polled every 20 µs (130 µs with
// the kernel's timer slack) nearly all the time: about 1,500 wake-ups a
// second, each preempting the computing thread when it shared its CPU.
// On the validation VMs each such preemption cost the computing thread
// about 45 µs of extra CPU (a cold TLB and caches afterwards); the compute
// steps of ResNet-18 `oc` at n = 2 took 1.3–1.6× their profiled CPU,
// 1.0–1.05× without (docs/VALIDATION.md, session 9). With schedtrace
// set, sysmon never deep-sleeps, so it settles at one round per 10 ms;
// a period of 2^31−1 ms (24.8 days, measured from boot) means it never
// prints a trace in practice. The Go issue is golang/go#18236.
const SteadySysmonSetting = "schedtrace=2147483647"

// steadyEnv returns env with SteadySysmonSetting added to GODEBUG, and
// whether it changed anything: a GODEBUG that already sets schedtrace
// (for instance schedtrace=0, to keep Go's default) is left alone.
func steadyEnv(env []string) ([]string, bool) {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		if found {
			continue // a duplicate: the runtime reads the first
		}
		found = true
		for _, s := range strings.Split(v, ",") {
			if strings.HasPrefix(strings.TrimSpace(s), "schedtrace=") {
				return env, false
			}
		}
		if v != "" {
			v += ","
		}
		out = append(out, "GODEBUG="+v+SteadySysmonSetting)
	}
	if !found {
		out = append(out, "GODEBUG="+SteadySysmonSetting)
	}
	return out, true
}
