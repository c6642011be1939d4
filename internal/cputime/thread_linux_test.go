package cputime

import (
	"runtime"
	"testing"
	"time"
)

// The thread clock advances with this thread's work, not with sleeping.
func TestThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := Thread()
	time.Sleep(20 * time.Millisecond)
	slept := Thread() - t0
	t1, w := Thread(), time.Now()
	x := 0
	for time.Since(w) < 20*time.Millisecond {
		x++
	}
	busy := Thread() - t1
	if slept > 5*time.Millisecond || busy < 5*time.Millisecond || x == 0 {
		t.Errorf("thread CPU: %v while sleeping 20 ms, %v while spinning 20 ms", slept, busy)
	}
}
