//go:build unix

package shaper

import (
	"syscall"
	"time"
)

// sleep waits for d. The Go scheduler wakes a sleeping goroutine through
// its network poller, whose timeout has millisecond resolution once every
// thread is idle: a 0.2 ms time.Sleep then takes about a millisecond (on
// the testbed an emulated 0.2 ms link measured 0.8 ms one way). Short
// waits therefore block the thread in nanosleep, which the kernel ends
// within its timer slack (~50 µs); the runtime hands the thread's P to
// other goroutines meanwhile.
func sleep(d time.Duration) {
	if d >= 2*time.Millisecond {
		time.Sleep(d)
		return
	}
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	for {
		var rem syscall.Timespec
		err := syscall.Nanosleep(&ts, &rem)
		if err != syscall.EINTR {
			return
		}
		ts = rem
	}
}
