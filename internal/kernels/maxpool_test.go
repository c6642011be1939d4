package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refMaxPool3x3 is the definition: the largest in-image value of each
// window, NaN when the window holds a NaN.
func refMaxPool3x3(s, nc int, in []float32, h, w int, oh, ow, padT, padL int) []float32 {
	out := make([]float32, nc*oh*ow)
	for c := 0; c < nc; c++ {
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				m := float32(math.Inf(-1))
				nan := false
				for ky := 0; ky < 3; ky++ {
					for kx := 0; kx < 3; kx++ {
						iy, ix := y*s-padT+ky, x*s-padL+kx
						if iy < 0 || iy >= h || ix < 0 || ix >= w {
							continue
						}
						v := in[c*h*w+iy*w+ix]
						if v != v {
							nan = true
						}
						if v > m {
							m = v
						}
					}
				}
				if nan {
					m = float32(math.NaN())
				}
				out[c*oh*ow+y*ow+x] = m
			}
		}
	}
	return out
}

func TestMaxPool3x3(t *testing.T) {
	forEachKernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 9))
		ran := 0
		for _, tc := range []struct{ s, h, w, pad int }{
			{2, 112, 112, 1}, {2, 113, 111, 1}, {1, 56, 56, 1}, {1, 7, 7, 0}, {2, 7, 9, 0},
			{1, 5, 40, 2}, {2, 33, 17, 2}, {2, 3, 3, 1}, {1, 1, 1, 1}, {2, 64, 64, 0},
		} {
			for _, ceil := range []bool{false, true} {
				outDim := func(n int) int {
					num := n + 2*tc.pad - 3
					if ceil {
						o := (num+tc.s-1)/tc.s + 1
						if (o-1)*tc.s >= n+tc.pad { // last window must start inside
							o--
						}
						return o
					}
					return num/tc.s + 1
				}
				oh, ow := outDim(tc.h), outDim(tc.w)
				nc := 3
				in := make([]float32, nc*tc.h*tc.w)
				for i := range in {
					in[i] = rng.Float32()*2 - 1.5 // mostly negative: padding must not win
				}
				in[len(in)/2] = float32(math.NaN())
				out := make([]float32, nc*oh*ow)
				if !MaxPool3x3(tc.s, nc, in, tc.h, tc.w, out, oh, ow, tc.pad, tc.pad) {
					if active.maxPool3x3 != nil {
						t.Errorf("%+v ceil=%v: kernel declined", tc, ceil)
					}
					continue
				}
				ran++
				want := refMaxPool3x3(tc.s, nc, in, tc.h, tc.w, oh, ow, tc.pad, tc.pad)
				for i := range want {
					g, w := out[i], want[i]
					if g != w && !(g != g && w != w) {
						t.Fatalf("%+v ceil=%v: out[%d] = %v, want %v", tc, ceil, i, g, w)
					}
				}
			}
		}
		t.Logf("%s: %d cases ran on the kernel", active.name, ran)
	})
}
