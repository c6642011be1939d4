package ops

import (
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

func init() {
	Register("Conv", &Def{
		Infer:   convInfer,
		Prepare: convPrepare,
		FLOPs:   convFLOPs,
		Bytes:   convBytes,
		Class:   ClassConv,
		ClassOf: convClass,
	})
}

// window is the geometry of a sliding window over the spatial dimensions
// (conv or pool), always expressed in 2-D: a 1-D operator has H=1.
type window struct {
	inH, inW   int
	kh, kw     int
	sh, sw     int
	dh, dw     int
	pt, pl     int // top/left padding
	pb, pr     int // bottom/right padding (informational; implied by outH/outW)
	outH, outW int
	oneD       bool
}

// spatialAttrs reads kernel_shape/strides/dilations/pads/auto_pad for k
// spatial dimensions and computes the output size. ceil selects pooling's
// ceil_mode output rule.
func windowOf(n *graph.Node, in []int, kernel []int, ceil bool) (window, error) {
	k := len(in)
	var w window
	ones := func() []int {
		s := make([]int, k)
		for i := range s {
			s[i] = 1
		}
		return s
	}
	strides := n.Ints("strides", ones())
	dil := n.Ints("dilations", ones())
	pads := n.Ints("pads", make([]int, 2*k))
	if len(strides) != k || len(dil) != k || len(pads) != 2*k {
		return w, Errorf(n, "strides %v, dilations %v, pads %v do not match %d spatial dimensions", strides, dil, pads, k)
	}
	for i := 0; i < k; i++ {
		if strides[i] < 1 || dil[i] < 1 || kernel[i] < 1 {
			return w, Errorf(n, "kernel %v, strides %v and dilations %v must be positive", kernel, strides, dil)
		}
		if pads[i] < 0 || pads[i+k] < 0 {
			return w, Errorf(n, "negative pads %v", pads)
		}
	}
	out := make([]int, k)
	autoPad := n.Str("auto_pad", "NOTSET")
	for i := 0; i < k; i++ {
		dk := (kernel[i]-1)*dil[i] + 1
		switch autoPad {
		case "NOTSET", "":
			span := in[i] + pads[i] + pads[i+k] - dk
			if span < 0 {
				return w, Errorf(n, "window %d (dilated) exceeds padded input %d along spatial dimension %d", dk, in[i]+pads[i]+pads[i+k], i)
			}
			if ceil {
				out[i] = (span+strides[i]-1)/strides[i] + 1
				// the last window must start inside the input or the left padding
				if (out[i]-1)*strides[i] >= in[i]+pads[i] {
					out[i]--
				}
			} else {
				out[i] = span/strides[i] + 1
			}
		case "VALID":
			if in[i] < dk {
				return w, Errorf(n, "window %d (dilated) exceeds input %d along spatial dimension %d", dk, in[i], i)
			}
			out[i] = (in[i]-dk)/strides[i] + 1
			pads[i], pads[i+k] = 0, 0
		case "SAME_UPPER", "SAME_LOWER":
			out[i] = (in[i] + strides[i] - 1) / strides[i]
			total := max(0, (out[i]-1)*strides[i]+dk-in[i])
			if autoPad == "SAME_UPPER" {
				pads[i], pads[i+k] = total/2, total-total/2
			} else {
				pads[i], pads[i+k] = total-total/2, total/2
			}
		default:
			return w, Errorf(n, "unsupported auto_pad %q", autoPad)
		}
		if out[i] < 1 {
			return w, Errorf(n, "output size %d along spatial dimension %d", out[i], i)
		}
	}
	if k == 1 {
		w = window{inH: 1, inW: in[0], kh: 1, kw: kernel[0], sh: 1, sw: strides[0], dh: 1, dw: dil[0],
			pl: pads[0], pr: pads[1], outH: 1, outW: out[0], oneD: true}
	} else {
		w = window{inH: in[0], inW: in[1], kh: kernel[0], kw: kernel[1], sh: strides[0], sw: strides[1],
			dh: dil[0], dw: dil[1], pt: pads[0], pl: pads[1], pb: pads[2], pr: pads[3], outH: out[0], outW: out[1]}
	}
	return w, nil
}

func (w window) outShape(nb, c int) tensor.Shape {
	if w.oneD {
		return tensor.Shape{nb, c, w.outW}
	}
	return tensor.Shape{nb, c, w.outH, w.outW}
}

// convGeom validates a Conv node and returns its geometry.
func convGeom(n *graph.Node, in []Input) (w window, group int, err error) {
	if err = arity(n, in, 2, 3, 1, 1); err != nil {
		return
	}
	for i := range in {
		if in[i].Present {
			if err = wantDType(n, in, i, tensor.Float32); err != nil {
				return
			}
		}
	}
	x, wt := in[0].Shape, in[1].Shape
	switch len(x) {
	case 3, 4:
	case 5:
		err = Errorf(n, "3-D convolution (input %v) is not supported", x)
		return
	default:
		err = Errorf(n, "input must be [N,C,H,W] (or [N,C,L]), has shape %v", x)
		return
	}
	if len(wt) != len(x) {
		err = Errorf(n, "weight rank %d (shape %v) does not match input rank %d", len(wt), wt, len(x))
		return
	}
	for _, d := range wt {
		if d == 0 {
			err = Errorf(n, "weight shape %v has a zero dimension", wt)
			return
		}
	}
	group = int(n.Int("group", 1))
	if group < 1 {
		err = Errorf(n, "group %d must be positive", group)
		return
	}
	if wt[0]%group != 0 || wt[0] == 0 {
		err = Errorf(n, "%d output channels do not divide into %d groups", wt[0], group)
		return
	}
	if x[1] != wt[1]*group {
		err = Errorf(n, "input has %d channels, weight expects %d (group %d)", x[1], wt[1]*group, group)
		return
	}
	kernel := []int(wt[2:])
	if ks := n.Ints("kernel_shape", nil); ks != nil {
		if len(ks) != len(kernel) {
			err = Errorf(n, "kernel_shape %v does not match weight %v", ks, wt)
			return
		}
		for i := range ks {
			if ks[i] != kernel[i] {
				err = Errorf(n, "kernel_shape %v does not match weight %v", ks, wt)
				return
			}
		}
	}
	if present(in, 2) {
		if b := in[2].Shape; len(b) != 1 || b[0] != wt[0] {
			err = Errorf(n, "bias shape %v, want [%d]", b, wt[0])
			return
		}
	}
	w, err = windowOf(n, x[2:], kernel, false)
	return
}

func convInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	w, _, err := convGeom(n, in)
	if err != nil {
		return nil, err
	}
	if _, err := fusedAct(n); err != nil {
		return nil, err
	}
	return one(tensor.Float32, w.outShape(in[0].Shape[0], in[1].Shape[0])), nil
}

func convFLOPs(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
	if len(in) < 2 || len(out) < 1 {
		return 0
	}
	wt := in[1].Shape
	macs := int64(out[0].Shape.Numel()) * int64(shapeProd(wt, 1, len(wt)))
	f := 2 * macs
	if present(in, 2) {
		f += int64(out[0].Shape.Numel())
	}
	return f
}

// convClass is ClassDepthwise for a grouped conv with one input channel per
// group, else ClassConv.
func convClass(n *graph.Node, in []Input) Class {
	if n.Int("group", 1) > 1 && len(in) > 1 && len(in[1].Shape) > 1 && in[1].Shape[1] == 1 {
		return ClassDepthwise
	}
	return ClassConv
}

type convKernel struct {
	n      *graph.Node
	p      kernels.ConvParams
	act    kernels.Act
	conv   *kernels.Conv // nil when weights are not constant
	inSz   int
	outSz  int
	nbatch int
}

func convPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	w, group, err := convGeom(n, in)
	if err != nil {
		return nil, err
	}
	act, err := fusedAct(n)
	if err != nil {
		return nil, err
	}
	x, wt := in[0].Shape, in[1].Shape
	k := &convKernel{n: n, act: act, nbatch: x[0]}
	k.p = kernels.ConvParams{
		InC: x[1], InH: w.inH, InW: w.inW,
		OutC: wt[0], OutH: w.outH, OutW: w.outW,
		KH: w.kh, KW: w.kw, StrideH: w.sh, StrideW: w.sw,
		DilH: w.dh, DilW: w.dw, PadT: w.pt, PadL: w.pl, Group: group,
	}
	k.inSz = x[1] * w.inH * w.inW
	k.outSz = wt[0] * w.outH * w.outW
	biasConst := !present(in, 2) || in[2].Const != nil
	if in[1].Const != nil && biasConst {
		var bias []float32
		if present(in, 2) {
			bias = in[2].Const.F
		}
		k.conv, err = kernels.NewConv(k.p, in[1].Const.F, bias, act)
		if err != nil {
			return nil, Errorf(n, "%v", err)
		}
	}
	return k, nil
}

// Run convolves each image of the batch.
func (k *convKernel) Run(p *kernels.Pool, in, out []*tensor.Tensor) error {
	if err := checkOuts(k.n, in, out, 2); err != nil {
		return err
	}
	c := k.conv
	if c == nil {
		var bias []float32
		if len(in) > 2 && in[2] != nil {
			bias = in[2].F
		}
		var err error
		if c, err = kernels.NewConv(k.p, in[1].F, bias, k.act); err != nil {
			return Errorf(k.n, "%v", err)
		}
	}
	x, y := in[0].F, out[0].F
	for b := 0; b < k.nbatch; b++ {
		c.Run(p, x[b*k.inSz:(b+1)*k.inSz], y[b*k.outSz:(b+1)*k.outSz])
	}
	return nil
}

// convBytes is the memory traffic of a convolution for the cost model:
// weights, output and the GEMM's image operand. The kernels build that
// operand as an im2col matrix (input channels × kernel window × output
// pixels per group) except for a 1×1, stride-1, unpadded convolution,
// which multiplies the image itself; depthwise convolutions run directly on
// the image. The im2col matrix does not shrink when the output channels are
// split across devices: an output-channel slice of a 3×3 convolution costs
// far more than its share of the multiply-adds.
func convBytes(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
	b := defaultBytes(n, in, out)
	if convClass(n, in) == ClassDepthwise || len(in) < 2 || len(out) < 1 {
		return b
	}
	w, group, err := convGeom(n, in)
	if err != nil {
		return b
	}
	if w.kh == 1 && w.kw == 1 && w.sh == 1 && w.sw == 1 && w.pt == 0 && w.pl == 0 && w.pb == 0 && w.pr == 0 {
		return b
	}
	x := in[0].Shape
	cin := x[1]
	batch := x[0]
	col := int64(batch) * int64(cin/max(group, 1)) * int64(group) * int64(w.kh*w.kw) * int64(w.outH*w.outW) * 4
	return b - int64(x.Numel())*4 + col
}
