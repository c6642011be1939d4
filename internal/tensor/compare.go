package tensor

import (
	"fmt"
	"math"
)

// AllClose reports whether got and want have the same shape and every element
// satisfies |got-want| <= atol + rtol*|want|. On mismatch the error names the
// first offending index and the largest deviation.
func AllClose(got, want *Tensor, rtol, atol float64) error {
	if !got.Shape.Equal(want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	if got.DType != want.DType {
		return fmt.Errorf("dtype %v, want %v", got.DType, want.DType)
	}
	switch got.DType {
	case Int64:
		for i := range got.I {
			if got.I[i] != want.I[i] {
				return fmt.Errorf("element %d: got %d, want %d", i, got.I[i], want.I[i])
			}
		}
		return nil
	case Bool:
		for i := range got.B {
			if got.B[i] != want.B[i] {
				return fmt.Errorf("element %d: got %v, want %v", i, got.B[i], want.B[i])
			}
		}
		return nil
	}
	bad, first := 0, -1
	worst := 0.0
	for i := range got.F {
		g, w := float64(got.F[i]), float64(want.F[i])
		if g == w || (math.IsNaN(w) && math.IsNaN(g)) {
			continue
		}
		d := math.Abs(g - w)
		if !(d <= atol+rtol*math.Abs(w)) {
			bad++
			if first < 0 {
				first = i
			}
			if d > worst || math.IsNaN(d) {
				worst = d
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d elements differ; first at %d: got %g, want %g; max abs diff %g",
			bad, len(got.F), first, got.F[first], want.F[first], worst)
	}
	return nil
}
