package cputime

import (
	"time"

	"golang.org/x/sys/unix"
)

// Thread is the CPU time of the calling OS thread so far (0 outside
// Linux), to the nanosecond (getrusage's per-thread figure lags by up to a
// scheduler tick). Lock the goroutine to its thread (runtime.LockOSThread)
// between two readings.
func Thread() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
