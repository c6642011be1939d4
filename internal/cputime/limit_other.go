//go:build !linux

package cputime

import "time"

// Limit reads this process's CFS bandwidth limit; there is none to read
// outside Linux.
func Limit() (quota float64, period time.Duration, ok bool) { return 0, 0, false }
