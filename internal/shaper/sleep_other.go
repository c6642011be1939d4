//go:build !unix

package shaper

import "time"

func sleep(d time.Duration) { time.Sleep(d) }
