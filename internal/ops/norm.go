package ops

import (
	"math"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

func init() {
	Register("BatchNormalization", &Def{Infer: bnInfer, Prepare: bnPrepare, FLOPs: numelFLOPs(2), Class: ClassElem})
	Register("InstanceNormalization", &Def{Infer: inInfer, Prepare: inPrepare, FLOPs: numelFLOPs(4), Class: ClassElem})
}

// bnInfer validates BatchNormalization in inference mode: X [N,C,...],
// scale/B/mean/var [C]. Training-mode outputs are rejected.
func bnInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 5, 5, 1, 5); err != nil {
		return nil, err
	}
	if extraOutputs(n, 1) {
		return nil, Errorf(n, "training outputs (running mean/var, saved mean/var) are not supported; inference mode only")
	}
	if n.Int("training_mode", 0) != 0 {
		return nil, Errorf(n, "training_mode=1 is not supported; inference mode only")
	}
	if opset < 9 && n.Int("spatial", 1) == 0 {
		return nil, Errorf(n, "spatial=0 is not supported")
	}
	for i := range in {
		if err := wantDType(n, in, i, tensor.Float32); err != nil {
			return nil, err
		}
	}
	x := in[0].Shape
	if len(x) < 2 {
		return nil, Errorf(n, "input must be [N,C,...], has shape %v", x)
	}
	for i := 1; i < 5; i++ {
		if s := in[i].Shape; len(s) != 1 || s[0] != x[1] {
			return nil, Errorf(n, "input %d has shape %v, want [%d] (one value per channel)", i, s, x[1])
		}
	}
	return one(tensor.Float32, x.Clone()), nil
}

// bnFold returns per-channel a, b with y = a*x + b.
func bnFold(eps float32, scale, bias, mean, vr []float32) (a, b []float32) {
	a, b = make([]float32, len(scale)), make([]float32, len(scale))
	for c := range scale {
		a[c] = float32(float64(scale[c]) / math.Sqrt(float64(vr[c])+float64(eps)))
		b[c] = bias[c] - mean[c]*a[c]
	}
	return
}

func bnPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	x := in[0].Shape
	nb, c, hw := x[0], x[1], shapeProd(x, 2, len(x))
	eps := n.Float("epsilon", 1e-5)
	var a0, b0 []float32
	if in[1].Const != nil && in[2].Const != nil && in[3].Const != nil && in[4].Const != nil {
		a0, b0 = bnFold(eps, in[1].Const.F, in[2].Const.F, in[3].Const.F, in[4].Const.F)
	}
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 5); err != nil {
			return err
		}
		a, b := a0, b0
		if a == nil {
			a, b = bnFold(eps, in[1].F, in[2].F, in[3].F, in[4].F)
		}
		src, dst := in[0].F, out[0].F
		splitItems(p, nb*c, hw, func(lo, hi int) {
			for pl := lo; pl < hi; pl++ {
				s, d := src[pl*hw:(pl+1)*hw], dst[pl*hw:(pl+1)*hw]
				sa, sb := a[pl%c], b[pl%c]
				for i, v := range s {
					d[i] = v*sa + sb
				}
			}
		})
		return nil
	}), nil
}

func inInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 3, 3, 1, 1); err != nil {
		return nil, err
	}
	for i := range in {
		if err := wantDType(n, in, i, tensor.Float32); err != nil {
			return nil, err
		}
	}
	x := in[0].Shape
	if len(x) < 3 {
		return nil, Errorf(n, "input must be [N,C,spatial...], has shape %v", x)
	}
	for i := 1; i < 3; i++ {
		if s := in[i].Shape; len(s) != 1 || s[0] != x[1] {
			return nil, Errorf(n, "input %d has shape %v, want [%d]", i, s, x[1])
		}
	}
	return one(tensor.Float32, x.Clone()), nil
}

func inPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	x := in[0].Shape
	nb, c, hw := x[0], x[1], shapeProd(x, 2, len(x))
	eps := float64(n.Float("epsilon", 1e-5))
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 3); err != nil {
			return err
		}
		src, dst, sc, bi := in[0].F, out[0].F, in[1].F, in[2].F
		splitItems(p, nb*c, hw, func(lo, hi int) {
			for pl := lo; pl < hi; pl++ {
				s, d := src[pl*hw:(pl+1)*hw], dst[pl*hw:(pl+1)*hw]
				var sum float64
				for _, v := range s {
					sum += float64(v)
				}
				mean := sum / float64(hw)
				var vs float64
				for _, v := range s {
					dv := float64(v) - mean
					vs += dv * dv
				}
				a := float64(sc[pl%c]) / math.Sqrt(vs/float64(hw)+eps)
				b := float64(bi[pl%c]) - mean*a
				for i, v := range s {
					d[i] = float32(float64(v)*a + b)
				}
			}
		})
		return nil
	}), nil
}
