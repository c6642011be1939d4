package cputime

import (
	"runtime"
	"testing"
	"time"
)

// The thread clock stands still while the thread sleeps and advances
// while it works.
func TestThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := Thread()
	time.Sleep(20 * time.Millisecond)
	if slept := Thread() - t0; slept > 5*time.Millisecond {
		t.Errorf("thread CPU advanced %v while sleeping 20 ms", slept)
	}
	t1, deadline := Thread(), time.Now().Add(5*time.Second)
	for Thread()-t1 < 10*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("thread CPU advanced %v in 5 s of spinning", Thread()-t1)
		}
	}
}
