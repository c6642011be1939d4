package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/iop-edge/iop/internal/tensor"
)

// refPool pools with explicit pads [t,l,b,r] and output size; avg divides by
// the taps inside the input (or inside input+pads when includePad).
func refPool(x *tensor.Tensor, isMax bool, k, s, d [2]int, pads [4]int, oh, ow int, includePad bool) *tensor.Tensor {
	N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := tensor.New(tensor.Float32, tensor.Shape{N, C, oh, ow})
	for p := 0; p < N*C; p++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				m := math.Inf(-1)
				sum, cnt := 0.0, 0
				for ky := 0; ky < k[0]; ky++ {
					for kx := 0; kx < k[1]; kx++ {
						iy := oy*s[0] - pads[0] + ky*d[0]
						ix := ox*s[1] - pads[1] + kx*d[1]
						in := iy >= 0 && iy < H && ix >= 0 && ix < W
						inPad := iy >= -pads[0] && iy < H+pads[2] && ix >= -pads[1] && ix < W+pads[3]
						if in {
							v := float64(x.F[(p*H+iy)*W+ix])
							m = math.Max(m, v)
							sum += v
						}
						if in || (includePad && inPad) {
							cnt++
						}
					}
				}
				v := m
				if !isMax {
					v = sum / float64(cnt)
				}
				out.F[(p*oh+oy)*ow+ox] = float32(v)
			}
		}
	}
	return out
}

func TestPools(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	x := randT(r, 2, 3, 7, 8)
	type pc struct {
		name       string
		k, s, d    [2]int
		pads       [4]int
		ceil       bool
		includePad bool
		oh, ow     int
	}
	for _, tc := range []pc{
		{"k3s2", [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [4]int{}, false, false, 3, 3},
		{"k3s2p1", [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, false, false, 4, 4},
		{"k3s1p1", [2]int{3, 3}, [2]int{1, 1}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, false, false, 7, 8},
		{"k2s2", [2]int{2, 2}, [2]int{2, 2}, [2]int{1, 1}, [4]int{}, false, false, 3, 4},
		{"k2s2ceil", [2]int{2, 2}, [2]int{2, 2}, [2]int{1, 1}, [4]int{}, true, false, 4, 4},
		{"k3s2ceil", [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [4]int{}, true, false, 3, 4},
		{"k3s2p1ceil_lastwindow", [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, true, false, 4, 5},
		{"asym", [2]int{2, 3}, [2]int{1, 2}, [2]int{1, 1}, [4]int{0, 1, 1, 0}, false, false, 7, 4},
		{"dilated", [2]int{2, 2}, [2]int{1, 1}, [2]int{2, 2}, [4]int{}, false, false, 5, 6},
		{"includepad", [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, false, true, 4, 4},
		{"includepad_ceil", [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, true, true, 4, 5},
	} {
		for _, isMax := range []bool{true, false} {
			op := "AveragePool"
			if isMax {
				op = "MaxPool"
			}
			n := node(op, 1, 1)
			n.SetInts("kernel_shape", tc.k[0], tc.k[1])
			n.SetInts("strides", tc.s[0], tc.s[1])
			n.SetInts("dilations", tc.d[0], tc.d[1])
			n.SetInts("pads", tc.pads[0], tc.pads[1], tc.pads[2], tc.pads[3])
			if tc.ceil {
				n.SetInt("ceil_mode", 1)
			}
			if tc.includePad {
				n.SetInt("count_include_pad", 1)
			}
			got := run1(t, n, 19, V(x))
			if got.Shape[2] != tc.oh || got.Shape[3] != tc.ow {
				t.Fatalf("%s %s: shape %v, want %d×%d", op, tc.name, got.Shape, tc.oh, tc.ow)
			}
			near(t, op+" "+tc.name, got, refPool(x, isMax, tc.k, tc.s, tc.d, tc.pads, tc.oh, tc.ow, tc.includePad))
		}
	}
}

// The ONNX case averagepool_2d_ceil_last_window_starts_on_pad: a window that
// would start in the right padding is dropped.
func TestPoolCeilLastWindowRule(t *testing.T) {
	n := node("AveragePool", 1, 1)
	n.SetInts("kernel_shape", 3, 3)
	n.SetInts("strides", 2, 2)
	n.SetInts("pads", 1, 1, 1, 1)
	n.SetInt("ceil_mode", 1)
	got := run1(t, n, 19, V(randT(rand.New(rand.NewSource(7)), 1, 1, 4, 4)))
	// floor((4+2-3)/2)+1 = 2, ceil gives 3, but window 3 starts at 4-1+... = 3 >= 4+1? (3-1)*2=4 >= 5? no → 3
	if got.Shape[2] != 3 {
		t.Fatalf("shape %v, want 3×3", got.Shape)
	}
	n2 := node("MaxPool", 1, 1)
	n2.SetInts("kernel_shape", 2, 2)
	n2.SetInts("strides", 2, 2)
	n2.SetInts("pads", 1, 1, 1, 1)
	n2.SetInt("ceil_mode", 1)
	// in 4, pads 1+1: ceil((6-2)/2)+1 = 3; (3-1)*2 = 4 < 4+1 → keep 3
	if got := run1(t, n2, 19, V(randT(rand.New(rand.NewSource(7)), 1, 1, 4, 4))); got.Shape[2] != 3 {
		t.Fatalf("shape %v, want 3", got.Shape)
	}
	n3 := node("MaxPool", 1, 1)
	n3.SetInts("kernel_shape", 2, 2)
	n3.SetInts("strides", 2, 2)
	n3.SetInts("pads", 0, 0, 1, 1)
	n3.SetInt("ceil_mode", 1)
	// in 4, end pad 1: ceil((5-2)/2)+1 = 3; (3-1)*2 = 4 >= 4+0 → 2
	if got := run1(t, n3, 19, V(randT(rand.New(rand.NewSource(7)), 1, 1, 4, 4))); got.Shape[2] != 2 {
		t.Fatalf("shape %v, want 2", got.Shape)
	}
}

func TestPoolSameAndGlobal(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	x := randT(r, 1, 2, 5, 5)
	n := node("MaxPool", 1, 1)
	n.SetInts("kernel_shape", 2, 2)
	n.SetStr("auto_pad", "SAME_UPPER")
	got := run1(t, n, 11, V(x))
	near(t, "same_upper", got, refPool(x, true, [2]int{2, 2}, [2]int{1, 1}, [2]int{1, 1}, [4]int{0, 0, 1, 1}, 5, 5, false))
	n = node("AveragePool", 1, 1)
	n.SetInts("kernel_shape", 2, 2)
	n.SetStr("auto_pad", "SAME_LOWER")
	got = run1(t, n, 11, V(x))
	near(t, "same_lower", got, refPool(x, false, [2]int{2, 2}, [2]int{1, 1}, [2]int{1, 1}, [4]int{1, 1, 0, 0}, 5, 5, false))

	big := randT(r, 2, 64, 20, 20) // large enough to run in parallel
	ga := run1(t, node("GlobalAveragePool", 1, 1), 13, V(big))
	gm := run1(t, node("GlobalMaxPool", 1, 1), 13, V(big))
	if !ga.Shape.Equal(tensor.Shape{2, 64, 1, 1}) {
		t.Fatalf("global pool shape %v", ga.Shape)
	}
	for p := 0; p < 128; p++ {
		var s float64
		m := float32(math.Inf(-1))
		for _, v := range big.F[p*400 : (p+1)*400] {
			s += float64(v)
			m = max(m, v)
		}
		if math.Abs(float64(ga.F[p])-s/400) > 1e-5 || gm.F[p] != m {
			t.Fatalf("plane %d: avg %g want %g, max %g want %g", p, ga.F[p], s/400, gm.F[p], m)
		}
	}
}

func TestPoolErrors(t *testing.T) {
	x := tensor.New(tensor.Float32, tensor.Shape{1, 1, 4, 4})
	mustFail(t, node("MaxPool", 1, 1), 13, "kernel_shape", V(x))
	n := setInts(node("MaxPool", 1, 2), "kernel_shape", 2, 2)
	mustFail(t, n, 13, "Indices", V(x))
	mustFail(t, setInts(node("AveragePool", 1, 1), "kernel_shape", 2, 2, 2), 13, "3-D", V(tensor.New(tensor.Float32, tensor.Shape{1, 1, 4, 4, 4})))
	mustFail(t, setInts(node("AveragePool", 1, 1), "kernel_shape", 5, 5), 13, "exceeds", V(x))
	mustFail(t, setInts(node("AveragePool", 1, 1), "kernel_shape", 2), 13, "kernel_shape", V(x))
	mustFail(t, node("GlobalAveragePool", 1, 1), 13, "[N,C", V(tensor.New(tensor.Float32, tensor.Shape{3, 4})))
	mustFail(t, node("LRN", 1, 1), 13, "size", V(x))
}

func TestLRN(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	x := randT(r, 1, 5, 2, 3)
	// 0.75 and 0.5 have their own fast paths; 0.6 takes the general one.
	for _, beta := range []float32{0.75, 0.5, 0.6} {
		n := node("LRN", 1, 1)
		n.SetInt("size", 3)
		n.SetFloat("alpha", 0.001)
		n.SetFloat("beta", beta)
		n.SetFloat("bias", 2)
		got := run1(t, n, 13, V(x))
		want := tensor.New(tensor.Float32, x.Shape)
		for c := 0; c < 5; c++ {
			for i := 0; i < 6; i++ {
				var s float64
				for cc := max(0, c-1); cc <= min(4, c+1); cc++ {
					v := float64(x.F[cc*6+i])
					s += v * v
				}
				want.F[c*6+i] = float32(float64(x.F[c*6+i]) / math.Pow(2+float64(float32(0.001))/3*s, float64(beta)))
			}
		}
		near(t, fmt.Sprintf("lrn beta %v", beta), got, want)
	}
}
