package cputime

import (
	"testing"
	"time"
)

func TestRatio(t *testing.T) {
	if q, p, ok := ratio("45000", "100000"); !ok || q != 0.45 || p != 100*time.Millisecond {
		t.Errorf("ratio(45000, 100000) = %v, %v, %v", q, p, ok)
	}
	for _, c := range [][2]string{{"-1", "100000"}, {"max", "100000"}, {"0", "100000"}, {"5000", "x"}} {
		if _, _, ok := ratio(c[0], c[1]); ok {
			t.Errorf("ratio(%q, %q) reports a limit", c[0], c[1])
		}
	}
}
