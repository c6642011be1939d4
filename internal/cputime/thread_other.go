//go:build !linux

package cputime

import "time"

// Thread is the CPU time of the calling OS thread; not read outside Linux.
func Thread() time.Duration { return 0 }
