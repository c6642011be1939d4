package ops

import (
	"math"
	"math/rand"
	"testing"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// refConv is a direct 2-D convolution with explicit pads [t,l,b,r].
func refConv(x, w, b *tensor.Tensor, stride, dil, pads [4]int, group int) *tensor.Tensor {
	N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	M, CG, KH, KW := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	OH := (H+pads[0]+pads[2]-((KH-1)*dil[0]+1))/stride[0] + 1
	OW := (W+pads[1]+pads[3]-((KW-1)*dil[1]+1))/stride[1] + 1
	out := tensor.New(tensor.Float32, tensor.Shape{N, M, OH, OW})
	mg := M / group
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			g := m / mg
			for oy := 0; oy < OH; oy++ {
				for ox := 0; ox < OW; ox++ {
					var s float64
					if b != nil {
						s = float64(b.F[m])
					}
					for c := 0; c < CG; c++ {
						for ky := 0; ky < KH; ky++ {
							for kx := 0; kx < KW; kx++ {
								iy := oy*stride[0] - pads[0] + ky*dil[0]
								ix := ox*stride[1] - pads[1] + kx*dil[1]
								if iy < 0 || iy >= H || ix < 0 || ix >= W {
									continue
								}
								s += float64(x.F[((n*C+g*CG+c)*H+iy)*W+ix]) * float64(w.F[((m*CG+c)*KH+ky)*KW+kx])
							}
						}
					}
					out.F[((n*M+m)*OH+oy)*OW+ox] = float32(s)
				}
			}
		}
	}
	return out
}

func TestConvAgainstReference(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	cases := []struct {
		name                  string
		n, c, h, w, m, kh, kw int
		stride, dil           [2]int
		pads                  [4]int
		group                 int
		bias                  bool
		constW                bool
	}{
		{"basic3x3", 1, 3, 7, 7, 4, 3, 3, [2]int{1, 1}, [2]int{1, 1}, [4]int{0, 0, 0, 0}, 1, true, true},
		{"pad1", 2, 3, 6, 5, 5, 3, 3, [2]int{1, 1}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, 1, false, true},
		{"stride2asym", 1, 2, 9, 8, 3, 3, 2, [2]int{2, 3}, [2]int{1, 1}, [4]int{1, 0, 2, 1}, 1, true, false},
		{"dilated", 1, 2, 10, 10, 2, 3, 3, [2]int{1, 1}, [2]int{2, 3}, [4]int{2, 2, 2, 2}, 1, true, true},
		{"groups", 1, 4, 6, 6, 6, 3, 3, [2]int{1, 1}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, 2, true, true},
		{"depthwise", 1, 8, 9, 9, 8, 3, 3, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, 8, true, true},
		{"depthwise_mult", 1, 3, 5, 5, 6, 3, 3, [2]int{1, 1}, [2]int{1, 1}, [4]int{0, 0, 0, 0}, 3, false, false},
		{"pointwise", 1, 16, 4, 4, 8, 1, 1, [2]int{1, 1}, [2]int{1, 1}, [4]int{0, 0, 0, 0}, 1, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := randT(r, tc.n, tc.c, tc.h, tc.w)
			w := randT(r, tc.m, tc.c/tc.group, tc.kh, tc.kw)
			var b *tensor.Tensor
			if tc.bias {
				b = randT(r, tc.m)
			}
			n := node("Conv", 3, 1)
			n.SetInts("strides", tc.stride[0], tc.stride[1])
			n.SetInts("dilations", tc.dil[0], tc.dil[1])
			n.SetInts("pads", tc.pads[0], tc.pads[1], tc.pads[2], tc.pads[3])
			n.SetInt("group", int64(tc.group))
			if tc.name == "basic3x3" {
				n.SetInts("kernel_shape", 3, 3)
			}
			wa := V(w)
			if tc.constW {
				wa = C(w)
			}
			ba := none
			if b != nil {
				ba = arg{b, tc.constW}
			}
			got := run1(t, n, 13, V(x), wa, ba)
			want := refConv(x, w, b, [4]int{tc.stride[0], tc.stride[1]}, [4]int{tc.dil[0], tc.dil[1]}, tc.pads, tc.group)
			near(t, tc.name, got, want)
			d, _ := Lookup("Conv")
			in := []Input{{ValueInfo: graph.ValueInfo{Shape: x.Shape}}, {ValueInfo: graph.ValueInfo{Shape: w.Shape}}}
			wantClass := ClassConv
			if tc.group > 1 && tc.c == tc.group {
				wantClass = ClassDepthwise
			}
			if c := d.ClassFor(n, in); c != wantClass {
				t.Errorf("class %v, want %v", c, wantClass)
			}
		})
	}
}

func TestConvAutoPadAndFused(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	x := randT(r, 1, 2, 7, 6)
	w := randT(r, 3, 2, 3, 3)
	for _, tc := range []struct {
		mode   string
		stride int
		oh, ow int
	}{
		{"SAME_UPPER", 2, 4, 3},
		{"SAME_LOWER", 2, 4, 3},
		{"VALID", 1, 5, 4},
		{"SAME_UPPER", 1, 7, 6},
	} {
		n := node("Conv", 2, 1)
		n.SetStr("auto_pad", tc.mode)
		n.SetInts("strides", tc.stride, tc.stride)
		got := run1(t, n, 11, V(x), C(w))
		if got.Shape[2] != tc.oh || got.Shape[3] != tc.ow {
			t.Fatalf("%s stride %d: shape %v, want %dx%d", tc.mode, tc.stride, got.Shape, tc.oh, tc.ow)
		}
	}
	// SAME_UPPER stride 2: H pad 2 → (1,1); W pad 1 → (0,1). SAME_LOWER: W → (1,0).
	up := node("Conv", 2, 1)
	up.SetStr("auto_pad", "SAME_UPPER")
	up.SetInts("strides", 2, 2)
	near(t, "same_upper", run1(t, up, 11, V(x), C(w)), refConv(x, w, nil, [4]int{2, 2}, [4]int{1, 1}, [4]int{1, 0, 1, 1}, 1))
	lo := node("Conv", 2, 1)
	lo.SetStr("auto_pad", "SAME_LOWER")
	lo.SetInts("strides", 2, 2)
	near(t, "same_lower", run1(t, lo, 11, V(x), C(w)), refConv(x, w, nil, [4]int{2, 2}, [4]int{1, 1}, [4]int{1, 1, 1, 0}, 1))

	// fused activations
	for _, act := range []struct {
		name        string
		alpha, beta float32
		f           func(float32) float32
	}{
		{"Relu", 0, 0, func(v float32) float32 { return max(v, 0) }},
		{"LeakyRelu", 0.1, 0, func(v float32) float32 {
			if v < 0 {
				return 0.1 * v
			}
			return v
		}},
		{"Clip", 0, 0.5, func(v float32) float32 { return min(max(v, 0), 0.5) }},
		{"Sigmoid", 0, 0, func(v float32) float32 { return float32(1 / (1 + math.Exp(-float64(v)))) }},
		{"HardSwish", 0, 0, func(v float32) float32 { return v * max(0, min(1, v/6+0.5)) }},
	} {
		n := node("Conv", 2, 1)
		n.SetInts("pads", 1, 1, 1, 1)
		n.SetStr(graph.FusedActivation, act.name)
		n.SetFloat(graph.FusedAlpha, act.alpha)
		n.SetFloat(graph.FusedBeta, act.beta)
		want := refConv(x, w, nil, [4]int{1, 1}, [4]int{1, 1}, [4]int{1, 1, 1, 1}, 1)
		for i, v := range want.F {
			want.F[i] = act.f(v)
		}
		near(t, act.name, run1(t, n, 13, V(x), C(w)), want)
	}
}

func TestConv1D(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	x := randT(r, 1, 2, 9)
	w := randT(r, 3, 2, 3)
	n := node("Conv", 2, 1)
	n.SetInts("pads", 1, 2)
	n.SetInts("strides", 2)
	got := run1(t, n, 13, V(x), C(w))
	want := refConv(x.Reshaped(tensor.Shape{1, 2, 1, 9}), w.Reshaped(tensor.Shape{3, 2, 1, 3}), nil,
		[4]int{1, 2}, [4]int{1, 1}, [4]int{0, 1, 0, 2}, 1)
	near(t, "conv1d", got, want.Reshaped(tensor.Shape{1, 3, want.Shape[3]}))
}

func TestConvErrors(t *testing.T) {
	x := tensor.New(tensor.Float32, tensor.Shape{1, 3, 5, 5})
	w4 := tensor.New(tensor.Float32, tensor.Shape{2, 4, 3, 3})
	w := tensor.New(tensor.Float32, tensor.Shape{2, 3, 3, 3})
	mustFail(t, node("Conv", 2, 1), 13, "input has 3 channels, weight expects 4 (group 1)", V(x), C(w4))
	mustFail(t, node("Conv", 2, 1), 13, "rank", V(x), C(tensor.New(tensor.Float32, tensor.Shape{2, 3, 3})))
	mustFail(t, node("Conv", 2, 1), 13, "3-D convolution", V(tensor.New(tensor.Float32, tensor.Shape{1, 3, 4, 4, 4})), C(tensor.New(tensor.Float32, tensor.Shape{2, 3, 1, 1, 1})))
	g := node("Conv", 2, 1)
	g.SetInt("group", 2)
	mustFail(t, g, 13, "", V(x), C(w))
	g0 := node("Conv", 2, 1)
	g0.SetInt("group", 0)
	mustFail(t, g0, 13, "group", V(x), C(w))
	ks := node("Conv", 2, 1)
	ks.SetInts("kernel_shape", 5, 5)
	mustFail(t, ks, 13, "kernel_shape", V(x), C(w))
	ap := node("Conv", 2, 1)
	ap.SetStr("auto_pad", "BOGUS")
	mustFail(t, ap, 13, "auto_pad", V(x), C(w))
	mustFail(t, node("Conv", 3, 1), 13, "bias", V(x), C(w), C(tensor.New(tensor.Float32, tensor.Shape{3})))
	big := node("Conv", 2, 1)
	mustFail(t, big, 13, "exceeds", V(tensor.New(tensor.Float32, tensor.Shape{1, 3, 2, 2})), C(w))
	st := node("Conv", 2, 1)
	st.SetInts("strides", 0, 1)
	mustFail(t, st, 13, "positive", V(x), C(w))
	pd := node("Conv", 2, 1)
	pd.SetInts("pads", 1, 1)
	mustFail(t, pd, 13, "pads", V(x), C(w))
	mustFail(t, node("Conv", 2, 1), 13, "type", V(tensor.New(tensor.Int64, tensor.Shape{1, 3, 5, 5})), C(w))
	fa := node("Conv", 2, 1)
	fa.SetStr(graph.FusedActivation, "Gelu")
	mustFail(t, fa, 13, "fused activation", V(x), C(w))
	mustFail(t, node("Conv", 1, 1), 13, "inputs", V(x))
}

// TestConvTrafficBytes: the cost model charges a convolution its im2col
// matrix, which an output-channel slice does not shrink; a 1×1 stride-1
// convolution and a depthwise one read the image itself.
func TestConvTrafficBytes(t *testing.T) {
	bytesOf := func(n *graph.Node, x, w tensor.Shape) int64 {
		t.Helper()
		d, _ := Lookup("Conv")
		in := []Input{
			{ValueInfo: graph.ValueInfo{Name: "in0", DType: tensor.Float32, Shape: x}, Present: true},
			{ValueInfo: graph.ValueInfo{Name: "in1", DType: tensor.Float32, Shape: w}, Present: true, Const: tensor.New(tensor.Float32, w)},
		}
		outs, err := d.Infer(n, 13, in)
		if err != nil {
			t.Fatal(err)
		}
		return d.TrafficBytes(n, in, outs)
	}
	conv3 := node("Conv", 2, 1)
	conv3.SetInts("kernel_shape", 3, 3)
	conv3.SetInts("pads", 1, 1, 1, 1)
	x := tensor.Shape{1, 64, 56, 56}
	col := int64(64*9*56*56) * 4
	for _, cout := range []int{64, 16} {
		want := col + int64(cout*64*9)*4 + int64(cout*56*56)*4
		if got := bytesOf(conv3, x, tensor.Shape{cout, 64, 3, 3}); got != want {
			t.Errorf("3×3 conv 64→%d: %d bytes, want %d (im2col + weights + output)", cout, got, want)
		}
	}
	one := node("Conv", 2, 1)
	want := int64(64*56*56)*4 + int64(16*64)*4 + int64(16*56*56)*4
	if got := bytesOf(one, x, tensor.Shape{16, 64, 1, 1}); got != want {
		t.Errorf("1×1 conv: %d bytes, want %d (image + weights + output)", got, want)
	}
	dw := node("Conv", 2, 1)
	dw.SetInts("kernel_shape", 3, 3)
	dw.SetInts("pads", 1, 1, 1, 1)
	dw.SetInt("group", 64)
	want = int64(64*56*56)*4 + int64(64*9)*4 + int64(64*56*56)*4
	if got := bytesOf(dw, x, tensor.Shape{64, 1, 3, 3}); got != want {
		t.Errorf("depthwise conv: %d bytes, want %d", got, want)
	}
}
