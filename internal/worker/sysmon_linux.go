package worker

import (
	"fmt"
	"os"
	"strings"
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
	// The executable by its path, so the process keeps its name (exec of
	// /proc/self/exe would name it "exe" in ps and top); /proc/self/exe
	// only if the file was replaced or removed since this process started.
	exe, err := os.Executable()
	if err != nil || strings.HasSuffix(exe, " (deleted)") {
		exe = "/proc/self/exe"
	}
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("re-executing the worker (%s) with GODEBUG=%s: %w", exe, SteadySysmonSetting, err)
	}
	return nil
}
