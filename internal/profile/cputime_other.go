//go:build !unix

package profile

import "time"

// processCPUTime is not available here: MeasureOps falls back to wall time.
func processCPUTime() time.Duration { return 0 }
