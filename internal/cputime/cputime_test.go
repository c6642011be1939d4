package cputime

import (
	"testing"
	"time"
)

// A busy loop shows up as CPU time; sleeping does not.
func TestProcess(t *testing.T) {
	if !Available() {
		t.Skip("no process CPU clock on this OS")
	}
	c0 := Process()
	x := 0.0
	for s := time.Now(); time.Since(s) < 50*time.Millisecond; {
		x += 1
	}
	busy := Process() - c0
	if busy < 20*time.Millisecond {
		t.Fatalf("50 ms busy loop used %v of CPU time (x=%v)", busy, x)
	}
	c1 := Process()
	time.Sleep(50 * time.Millisecond)
	if idle := Process() - c1; idle > 20*time.Millisecond {
		t.Fatalf("50 ms of sleep used %v of CPU time", idle)
	}
}
