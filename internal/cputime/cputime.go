// Package cputime reads the CPU time this process has used, the clock that
// separates a device's own work from time it was throttled or waiting
// (profiles, traces).
package cputime

import "time"

// Process is the user+system CPU time of the whole process so far, 0 where
// the OS does not say (Available reports which).
func Process() time.Duration { return process() }

// Available reports whether Process reads a real clock here.
func Available() bool { return available }
