package worker

import (
	"fmt"
	"os"
	"syscall"
)

// SteadySysmon re-executes this process (same pid, arguments and open
// files) with SteadySysmonSetting in its GODEBUG, which the runtime reads
// only at start. It returns nil without doing anything when GODEBUG
// already sets schedtrace, and an error if the exec fails; on success it
// does not return. Call it before starting goroutines that matter.
func SteadySysmon() error {
	env, changed := steadyEnv(os.Environ())
	if !changed {
		return nil
	}
	if err := syscall.Exec("/proc/self/exe", os.Args, env); err != nil {
		return fmt.Errorf("re-executing the worker with GODEBUG=%s: %w", SteadySysmonSetting, err)
	}
	return nil
}
