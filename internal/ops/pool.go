package ops

import (
	"math"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

func init() {
	Register("MaxPool", &Def{Infer: poolInfer(true), Prepare: poolPrepare(true), FLOPs: poolFLOPs, Class: ClassPool})
	Register("AveragePool", &Def{Infer: poolInfer(false), Prepare: poolPrepare(false), FLOPs: poolFLOPs, Class: ClassPool})
	Register("GlobalAveragePool", globalPoolDef(false))
	Register("GlobalMaxPool", globalPoolDef(true))
	Register("LRN", &Def{Infer: lrnInfer, Prepare: lrnPrepare, FLOPs: lrnFLOPs, Class: ClassPool})
}

// poolGeom validates a MaxPool/AveragePool node and returns its window.
func poolGeom(n *graph.Node, in []Input, isMax bool) (window, error) {
	maxOut := 1
	if isMax {
		maxOut = 2
	}
	if err := arity(n, in, 1, 1, 1, maxOut); err != nil {
		return window{}, err
	}
	if isMax && extraOutputs(n, 1) {
		return window{}, Errorf(n, "the Indices output is not supported")
	}
	if err := wantDType(n, in, 0, tensor.Float32); err != nil {
		return window{}, err
	}
	x := in[0].Shape
	switch len(x) {
	case 3, 4:
	case 5:
		return window{}, Errorf(n, "3-D pooling (input %v) is not supported", x)
	default:
		return window{}, Errorf(n, "input must be [N,C,H,W] (or [N,C,L]), has shape %v", x)
	}
	ks := n.Ints("kernel_shape", nil)
	if len(ks) != len(x)-2 {
		return window{}, Errorf(n, "kernel_shape %v must have %d values", ks, len(x)-2)
	}
	return windowOf(n, x[2:], ks, n.Int("ceil_mode", 0) != 0)
}

func poolInfer(isMax bool) func(*graph.Node, int64, []Input) ([]graph.ValueInfo, error) {
	return func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
		w, err := poolGeom(n, in, isMax)
		if err != nil {
			return nil, err
		}
		return one(tensor.Float32, w.outShape(in[0].Shape[0], in[0].Shape[1])), nil
	}
}

func poolFLOPs(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
	ks := n.Ints("kernel_shape", nil)
	k := int64(1)
	for _, v := range ks {
		k *= int64(v)
	}
	return k * int64(out[0].Shape.Numel())
}

// taps returns, for each output position along one axis, the window start
// in input coordinates and the range [t0, t1) of taps that fall inside the
// input.
func taps(out, in, k, s, d, pad int) (start, t0, t1 []int) {
	start, t0, t1 = make([]int, out), make([]int, out), make([]int, out)
	for o := 0; o < out; o++ {
		st := o*s - pad
		a := 0
		if st < 0 {
			a = (-st + d - 1) / d
		}
		b := 0
		if in-1-st >= 0 {
			b = min(k, (in-1-st)/d+1)
		}
		if b < a {
			b = a
		}
		start[o], t0[o], t1[o] = st, a, b
	}
	return
}

type poolKernel struct {
	n                 *graph.Node
	w                 window
	isMax             bool
	planes            int
	ys, y0, y1        []int
	xs, x0, x1        []int
	inv               []float32 // AveragePool: 1/divisor per output position
	inPlane, outPlane int
	ixLo, ixHi        int // output columns whose window is inside the input
}

func poolPrepare(isMax bool) func(*graph.Node, int64, []Input, []graph.ValueInfo) (Kernel, error) {
	return func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
		w, err := poolGeom(n, in, isMax)
		if err != nil {
			return nil, err
		}
		k := &poolKernel{n: n, w: w, isMax: isMax, planes: in[0].Shape[0] * in[0].Shape[1]}
		k.ys, k.y0, k.y1 = taps(w.outH, w.inH, w.kh, w.sh, w.dh, w.pt)
		k.xs, k.x0, k.x1 = taps(w.outW, w.inW, w.kw, w.sw, w.dw, w.pl)
		k.inPlane, k.outPlane = w.inH*w.inW, w.outH*w.outW
		k.ixLo, k.ixHi = interior(k.x0, k.x1, w.kw)
		if !isMax {
			includePad := n.Int("count_include_pad", 0) != 0
			// number of taps counted along one axis: inside the input, or
			// inside input plus pads when count_include_pad
			count := func(start []int, t0, t1 []int, k, d, in, padB, padE int) []int {
				c := make([]int, len(start))
				for o, st := range start {
					if !includePad {
						c[o] = t1[o] - t0[o]
						continue
					}
					for t := 0; t < k; t++ {
						if p := st + t*d; p >= -padB && p < in+padE {
							c[o]++
						}
					}
				}
				return c
			}
			cy := count(k.ys, k.y0, k.y1, w.kh, w.dh, w.inH, w.pt, w.pb)
			cx := count(k.xs, k.x0, k.x1, w.kw, w.dw, w.inW, w.pl, w.pr)
			k.inv = make([]float32, w.outH*w.outW)
			for oy := range cy {
				for ox := range cx {
					if c := cy[oy] * cx[ox]; c > 0 {
						k.inv[oy*w.outW+ox] = 1 / float32(c)
					}
				}
			}
		}
		return k, nil
	}
}

// Run pools every (image, channel) plane, planes split over the pool.
func (k *poolKernel) Run(p *kernels.Pool, in, out []*tensor.Tensor) error {
	if err := checkOuts(k.n, in, out, 1); err != nil {
		return err
	}
	x, y := in[0].F, out[0].F
	w := k.w
	if k.isMax && w.kh == 3 && w.kw == 3 && w.sh == w.sw && w.dh == 1 && w.dw == 1 {
		// Try the direct vector kernel on the first plane; it declines
		// geometries (and kernel sets) it does not handle.
		if kernels.MaxPool3x3(w.sh, 1, x, w.inH, w.inW, y, w.outH, w.outW, w.pt, w.pl) {
			splitItems(p, k.planes-1, k.outPlane*9, func(lo, hi int) {
				kernels.MaxPool3x3(w.sh, hi-lo, x[(lo+1)*k.inPlane:], w.inH, w.inW, y[(lo+1)*k.outPlane:], w.outH, w.outW, w.pt, w.pl)
			})
			return nil
		}
	}
	splitItems(p, k.planes, k.outPlane*k.w.kh*k.w.kw, func(lo, hi int) {
		tmp := make([]float32, k.w.inW)
		for pl := lo; pl < hi; pl++ {
			src := x[pl*k.inPlane : (pl+1)*k.inPlane]
			dst := y[pl*k.outPlane : (pl+1)*k.outPlane]
			if k.isMax {
				k.maxPlane(src, dst, tmp)
			} else {
				k.avgPlane(src, dst, tmp)
			}
		}
	})
	return nil
}

// interior returns the range [lo, hi) of output positions whose whole
// window lies inside the input.
func interior(t0, t1 []int, k int) (lo, hi int) {
	lo, hi = len(t0), len(t0)
	for o := range t0 {
		if t0[o] == 0 && t1[o] == k {
			if lo == len(t0) {
				lo = o
			}
			hi = o + 1
		}
	}
	if lo > hi {
		lo = hi
	}
	return
}

// Pooling is separable: each output row first reduces its window's input
// rows into one row (vertical pass, contiguous and branch-free), then
// slides the window along that row (horizontal pass). The builtin max is
// used throughout: a compare-and-branch max mispredicts on real data.

// maxPlane max-pools one plane; tmp has room for one input row.
func (k *poolKernel) maxPlane(src, dst, tmp []float32) {
	w := k.w
	inW := w.inW
	tmp = tmp[:inW]
	ninf := float32(math.Inf(-1))
	for oy := 0; oy < w.outH; oy++ {
		ys, y0, y1 := k.ys[oy], k.y0[oy], k.y1[oy]
		if y0 == y1 {
			for i := range tmp {
				tmp[i] = ninf
			}
		} else {
			copy(tmp, src[(ys+y0*w.dh)*inW:(ys+y0*w.dh+1)*inW])
			for ty := y0 + 1; ty < y1; ty++ {
				row := src[(ys+ty*w.dh)*inW : (ys+ty*w.dh+1)*inW][:len(tmp)]
				for i, v := range row {
					tmp[i] = max(tmp[i], v)
				}
			}
		}
		drow := dst[oy*w.outW : (oy+1)*w.outW]
		lo, hi := k.ixLo, k.ixHi
		switch {
		case w.dw == 1 && w.kw == 3:
			for ox := lo; ox < hi; ox++ {
				b := k.xs[ox]
				a := tmp[b : b+3 : b+3]
				drow[ox] = max(a[0], a[1], a[2])
			}
		case w.dw == 1 && w.kw == 2:
			for ox := lo; ox < hi; ox++ {
				b := k.xs[ox]
				a := tmp[b : b+2 : b+2]
				drow[ox] = max(a[0], a[1])
			}
		default:
			lo, hi = 0, 0
		}
		for ox := range drow {
			if ox >= lo && ox < hi {
				continue
			}
			xs, x0, x1 := k.xs[ox], k.x0[ox], k.x1[ox]
			m := ninf
			for tx := x0; tx < x1; tx++ {
				m = max(m, tmp[xs+tx*w.dw])
			}
			drow[ox] = m
		}
	}
}

// avgPlane average-pools one plane; tmp has room for one input row.
func (k *poolKernel) avgPlane(src, dst, tmp []float32) {
	w := k.w
	inW := w.inW
	tmp = tmp[:inW]
	for oy := 0; oy < w.outH; oy++ {
		ys, y0, y1 := k.ys[oy], k.y0[oy], k.y1[oy]
		clear(tmp)
		for ty := y0; ty < y1; ty++ {
			row := src[(ys+ty*w.dh)*inW : (ys+ty*w.dh+1)*inW][:len(tmp)]
			for i, v := range row {
				tmp[i] += v
			}
		}
		drow := dst[oy*w.outW : (oy+1)*w.outW]
		inv := k.inv[oy*w.outW : (oy+1)*w.outW][:len(drow)]
		lo, hi := k.ixLo, k.ixHi
		switch {
		case w.dw == 1 && w.kw == 3:
			for ox := lo; ox < hi; ox++ {
				b := k.xs[ox]
				a := tmp[b : b+3 : b+3]
				drow[ox] = (a[0] + a[1] + a[2]) * inv[ox]
			}
		case w.dw == 1 && w.kw == 2:
			for ox := lo; ox < hi; ox++ {
				b := k.xs[ox]
				a := tmp[b : b+2 : b+2]
				drow[ox] = (a[0] + a[1]) * inv[ox]
			}
		default:
			lo, hi = 0, 0
		}
		for ox := range drow {
			if ox >= lo && ox < hi {
				continue
			}
			xs, x0, x1 := k.xs[ox], k.x0[ox], k.x1[ox]
			var s float32
			for tx := x0; tx < x1; tx++ {
				s += tmp[xs+tx*w.dw]
			}
			drow[ox] = s * inv[ox]
		}
	}
}

// globalPoolDef defines GlobalAveragePool and GlobalMaxPool over all
// spatial dimensions of an [N,C,...] input.
func globalPoolDef(isMax bool) *Def {
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 1, 1, 1, 1); err != nil {
				return nil, err
			}
			if err := wantDType(n, in, 0, tensor.Float32); err != nil {
				return nil, err
			}
			x := in[0].Shape
			if len(x) < 3 {
				return nil, Errorf(n, "input must be [N,C,spatial...], has shape %v", x)
			}
			if shapeProd(x, 2, len(x)) == 0 {
				return nil, Errorf(n, "input %v has an empty spatial extent", x)
			}
			o := x.Clone()
			for i := 2; i < len(o); i++ {
				o[i] = 1
			}
			return one(tensor.Float32, o), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			x := in[0].Shape
			planes, size := x[0]*x[1], shapeProd(x, 2, len(x))
			inv := 1 / float32(size)
			return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 1); err != nil {
					return err
				}
				src, dst := in[0].F, out[0].F
				splitItems(p, planes, size, func(lo, hi int) {
					for pl := lo; pl < hi; pl++ {
						plane := src[pl*size : (pl+1)*size]
						if isMax {
							m := plane[0]
							for _, v := range plane[1:] {
								m = max(m, v)
							}
							dst[pl] = m
							continue
						}
						// four partial sums: shorter dependency chains and a
						// little more accuracy than one running sum
						var s0, s1, s2, s3 float32
						i := 0
						for ; i+4 <= len(plane); i += 4 {
							s0 += plane[i]
							s1 += plane[i+1]
							s2 += plane[i+2]
							s3 += plane[i+3]
						}
						for ; i < len(plane); i++ {
							s0 += plane[i]
						}
						dst[pl] = (s0 + s1 + s2 + s3) * inv
					}
				})
				return nil
			}), nil
		},
		FLOPs: func(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
			return int64(in[0].Shape.Numel())
		},
		Class: ClassPool,
	}
}

func lrnInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	if err := wantDType(n, in, 0, tensor.Float32); err != nil {
		return nil, err
	}
	if len(in[0].Shape) < 3 {
		return nil, Errorf(n, "input must be [N,C,spatial...], has shape %v", in[0].Shape)
	}
	if !n.Has("size") || n.Int("size", 0) < 1 {
		return nil, Errorf(n, "attribute size must be a positive integer")
	}
	return one(tensor.Float32, in[0].Shape.Clone()), nil
}

func lrnFLOPs(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
	return int64(out[0].Shape.Numel()) * (2*n.Int("size", 1) + 4)
}

func lrnPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	x := in[0].Shape
	size := int(n.Int("size", 1))
	alpha := float64(n.Float("alpha", 1e-4)) / float64(size)
	beta := float64(n.Float("beta", 0.75))
	bias := float64(n.Float("bias", 1))
	nb, c, hw := x[0], x[1], shapeProd(x, 2, len(x))
	lo, hi := (size-1)/2, size-1-(size-1)/2 // channels before and after
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 1); err != nil {
			return err
		}
		src, dst := in[0].F, out[0].F
		splitItems(p, nb*c, hw*size, func(a, b int) {
			acc := make([]float64, hw)
			for pl := a; pl < b; pl++ {
				img, ch := pl/c, pl%c
				clear(acc)
				for cc := max(0, ch-lo); cc <= min(c-1, ch+hi); cc++ {
					s := src[(img*c+cc)*hw : (img*c+cc+1)*hw]
					for i, v := range s {
						acc[i] += float64(v) * float64(v)
					}
				}
				s := src[pl*hw : (pl+1)*hw]
				d := dst[pl*hw : (pl+1)*hw]
				switch beta {
				case 0.75: // AlexNet's and GoogLeNet's value: t^0.75 = √t·⁴√t
					for i, v := range s {
						r := math.Sqrt(bias + alpha*acc[i])
						d[i] = float32(float64(v) / (r * math.Sqrt(r)))
					}
				case 0.5:
					for i, v := range s {
						d[i] = float32(float64(v) / math.Sqrt(bias+alpha*acc[i]))
					}
				default:
					for i, v := range s {
						d[i] = float32(float64(v) * math.Exp(-beta*math.Log(bias+alpha*acc[i])))
					}
				}
			}
		})
		return nil
	}), nil
}
