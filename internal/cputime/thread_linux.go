package cputime

import (
	"syscall"
	"time"
	"unsafe"
)

const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID

// Thread is the CPU time of the calling OS thread so far (0 outside
// Linux), to the nanosecond (getrusage's per-thread figure lags by up to a
// scheduler tick). Lock the goroutine to its thread (runtime.LockOSThread)
// between two readings.
func Thread() time.Duration {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}
