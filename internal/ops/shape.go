package ops

import (
	"math"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

// Operators that only change a tensor's shape (views), and the operators
// producing shape tensors and constants.

func init() {
	Register("Reshape", viewDef(reshapeInfer, 1, 2))
	Register("Flatten", viewDef(flattenInfer, 1, 1))
	Register("Squeeze", viewDef(squeezeInfer, 1, 2))
	Register("Unsqueeze", viewDef(unsqueezeInfer, 1, 2))
	Register("Identity", viewDef(func(n *graph.Node, opset int64, in []Input) (tensor.Shape, error) {
		return in[0].Shape.Clone(), nil
	}, 1, 1))
	Register("Dropout", viewDef(dropoutInfer, 1, 3))

	Register("Shape", &Def{Infer: shapeInfer, Prepare: shapePrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("Size", &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 1, 1, 1, 1); err != nil {
				return nil, err
			}
			return one(tensor.Int64, tensor.Shape{}), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 1); err != nil {
					return err
				}
				out[0].I[0] = int64(in[0].Shape.Numel())
				return nil
			}), nil
		},
		FLOPs: zeroFLOPs, Class: ClassMemory,
	})
	Register("Cast", &Def{Infer: castInfer, Prepare: castPrepare, FLOPs: zeroFLOPs, Class: ClassElem})
	Register("Constant", &Def{Infer: constantInfer, Prepare: constantPrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("ConstantOfShape", &Def{Infer: cosInfer, Prepare: cosPrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("Range", &Def{Infer: rangeInfer, Prepare: rangePrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
}

// viewDef defines an operator whose output 0 is input 0's data under a new
// shape. Its Run copies (the executor normally aliases instead).
func viewDef(shape func(n *graph.Node, opset int64, in []Input) (tensor.Shape, error), minIn, maxIn int) *Def {
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, minIn, maxIn, 1, 3); err != nil {
				return nil, err
			}
			if n.Op != "Dropout" && extraOutputs(n, 1) {
				return nil, Errorf(n, "has %d outputs, want 1", len(n.Outputs))
			}
			s, err := shape(n, opset, in)
			if err != nil {
				return nil, err
			}
			if s.Numel() != in[0].Shape.Numel() {
				return nil, Errorf(n, "output shape %v has %d elements, input %v has %d", s, s.Numel(), in[0].Shape, in[0].Shape.Numel())
			}
			return one(in[0].DType, s), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 1); err != nil {
					return err
				}
				copyTensor(out[0], in[0])
				return nil
			}), nil
		},
		FLOPs: zeroFLOPs,
		View:  true,
		Class: ClassMemory,
	}
}

func reshapeInfer(n *graph.Node, opset int64, in []Input) (tensor.Shape, error) {
	var spec []int64
	if present(in, 1) {
		var err error
		if spec, err = constInts(n, in, 1, "shape"); err != nil {
			return nil, err
		}
		if len(in[1].Shape) != 1 {
			return nil, Errorf(n, "shape input must be 1-D, has shape %v", in[1].Shape)
		}
	} else if s, ok := attrInts64(n, "shape"); ok {
		spec = s
	} else {
		return nil, Errorf(n, "missing shape input")
	}
	x := in[0].Shape
	allowZero := n.Int("allowzero", 0) != 0
	out := make(tensor.Shape, len(spec))
	infer := -1
	known := 1
	hasZero := false
	for i, v := range spec {
		switch {
		case v == -1:
			if infer >= 0 {
				return nil, Errorf(n, "shape %v has more than one -1", spec)
			}
			infer = i
			continue
		case v < -1:
			return nil, Errorf(n, "shape %v has invalid dimension %d", spec, v)
		case v == 0 && !allowZero:
			if i >= len(x) {
				return nil, Errorf(n, "shape %v copies dimension %d (0) but the input %v has rank %d", spec, i, x, len(x))
			}
			out[i] = x[i]
		case v > math.MaxInt32:
			return nil, Errorf(n, "shape %v has a dimension too large", spec)
		default:
			if v == 0 {
				hasZero = true
			}
			out[i] = int(v)
		}
		known *= out[i]
	}
	if infer >= 0 {
		out[infer] = 1
	}
	if err := checkSize(n, out); err != nil {
		return nil, err
	}
	if infer >= 0 {
		if allowZero && hasZero {
			return nil, Errorf(n, "shape %v has both 0 and -1 with allowzero=1", spec)
		}
		total := x.Numel()
		if known == 0 || total%known != 0 {
			return nil, Errorf(n, "cannot reshape %v to %v: %d elements do not divide by %d", x, spec, total, known)
		}
		out[infer] = total / known
	}
	if out.Numel() != x.Numel() {
		return nil, Errorf(n, "cannot reshape %v (%d elements) to %v (%d elements)", x, x.Numel(), out, out.Numel())
	}
	return out, nil
}

func flattenInfer(n *graph.Node, opset int64, in []Input) (tensor.Shape, error) {
	x := in[0].Shape
	axis := int(n.Int("axis", 1))
	if axis < -len(x) || axis > len(x) {
		return nil, Errorf(n, "axis %d out of range for rank %d", axis, len(x))
	}
	if axis < 0 {
		axis += len(x)
	}
	return tensor.Shape{shapeProd(x, 0, axis), shapeProd(x, axis, len(x))}, nil
}

// axesArg reads axes from an attribute (before opset `fromOpset`) or from
// input idx (from it on). ok is false when no axes are given.
func axesArg(n *graph.Node, opset, fromOpset int64, in []Input, idx int) (axes []int, ok bool, err error) {
	if opset < fromOpset || !present(in, idx) {
		if a, has := attrInts64(n, "axes"); has {
			return toInts(a), true, nil
		}
		return nil, false, nil
	}
	v, err := constInts(n, in, idx, "axes")
	if err != nil {
		return nil, false, err
	}
	if len(in[idx].Shape) > 1 {
		return nil, false, Errorf(n, "axes input must be 1-D, has shape %v", in[idx].Shape)
	}
	return toInts(v), true, nil
}

func squeezeInfer(n *graph.Node, opset int64, in []Input) (tensor.Shape, error) {
	x := in[0].Shape
	axes, ok, err := axesArg(n, opset, 13, in, 1)
	if err != nil {
		return nil, err
	}
	drop := make([]bool, len(x))
	if !ok {
		for i, d := range x {
			drop[i] = d == 1
		}
	} else {
		ax, err := normAxes(n, axes, len(x))
		if err != nil {
			return nil, err
		}
		for _, a := range ax {
			if x[a] != 1 {
				return nil, Errorf(n, "cannot squeeze axis %d of shape %v: size is %d, not 1", a, x, x[a])
			}
			drop[a] = true
		}
	}
	out := tensor.Shape{}
	for i, d := range x {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return out, nil
}

func unsqueezeInfer(n *graph.Node, opset int64, in []Input) (tensor.Shape, error) {
	x := in[0].Shape
	axes, ok, err := axesArg(n, opset, 13, in, 1)
	if err != nil {
		return nil, err
	}
	if !ok || len(axes) == 0 {
		return nil, Errorf(n, "axes are required")
	}
	r := len(x) + len(axes)
	ax, err := normAxes(n, axes, r)
	if err != nil {
		return nil, err
	}
	ins := make([]bool, r)
	for _, a := range ax {
		ins[a] = true
	}
	out := make(tensor.Shape, r)
	j := 0
	for i := range out {
		if ins[i] {
			out[i] = 1
		} else {
			out[i] = x[j]
			j++
		}
	}
	return out, nil
}

func dropoutInfer(n *graph.Node, opset int64, in []Input) (tensor.Shape, error) {
	if extraOutputs(n, 1) {
		return nil, Errorf(n, "the mask output is not supported (inference-mode Dropout is an identity view)")
	}
	if present(in, 2) {
		if in[2].Const == nil {
			return nil, Errorf(n, "training_mode input must be a constant")
		}
		if v := in[2].Const; v.Len() == 1 && ((v.DType == tensor.Bool && v.B[0]) || (v.DType == tensor.Int64 && v.I[0] != 0) || (v.DType == tensor.Float32 && v.F[0] != 0)) {
			return nil, Errorf(n, "training_mode=true is not supported; inference only")
		}
	}
	if opset < 7 && n.Int("is_test", 0) == 0 && n.Has("is_test") {
		return nil, Errorf(n, "is_test=0 (training) is not supported")
	}
	return in[0].Shape.Clone(), nil
}

func shapeInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	s, e := shapeRange(n, opset, len(in[0].Shape))
	return one(tensor.Int64, tensor.Shape{e - s}), nil
}

// shapeRange returns the [start, end) slice of dimensions Shape reports
// (start/end attributes from opset 15, clamped like Slice).
func shapeRange(n *graph.Node, opset int64, r int) (int, int) {
	if opset < 15 {
		return 0, r
	}
	clamp := func(v int64) int {
		if v < 0 {
			v += int64(r)
		}
		return int(min(max(v, 0), int64(r)))
	}
	s := clamp(n.Int("start", 0))
	e := r
	if n.Has("end") {
		e = clamp(n.Int("end", int64(r)))
	}
	if e < s {
		e = s
	}
	return s, e
}

func shapePrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 1); err != nil {
			return err
		}
		s, e := shapeRange(n, opset, len(in[0].Shape))
		if out[0].Len() != e-s {
			return Errorf(n, "output has %d values, want %d", out[0].Len(), e-s)
		}
		for i := s; i < e; i++ {
			out[0].I[i-s] = int64(in[0].Shape[i])
		}
		return nil
	}), nil
}

// onnxDType maps an ONNX TensorProto data type to the engine's type.
// Narrower integer and float types map to Int64 and Float32.
func onnxDType(t int64) (tensor.DType, bool) {
	switch t {
	case 1, 10, 11, 16: // FLOAT, FLOAT16, DOUBLE, BFLOAT16
		return tensor.Float32, true
	case 2, 3, 4, 5, 6, 7, 12, 13: // UINT8, INT8, UINT16, INT16, INT32, INT64, UINT32, UINT64
		return tensor.Int64, true
	case 9: // BOOL
		return tensor.Bool, true
	}
	return 0, false
}

func castInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	if !n.Has("to") {
		return nil, Errorf(n, "attribute to is required")
	}
	dt, ok := onnxDType(n.Int("to", 0))
	if !ok {
		return nil, Errorf(n, "cast to ONNX data type %d is not supported", n.Int("to", 0))
	}
	if err := wantDType(n, in, 0, tensor.Float32, tensor.Int64, tensor.Bool); err != nil {
		return nil, err
	}
	return one(dt, in[0].Shape.Clone()), nil
}

func castPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 1); err != nil {
			return err
		}
		castInto(out[0], in[0])
		return nil
	}), nil
}

// constantValue builds the value of a Constant node from its attributes.
func constantValue(n *graph.Node) (*tensor.Tensor, error) {
	if t := n.TensorAttr("value"); t != nil {
		return t, nil
	}
	if a, ok := n.Attrs["value_float"]; ok && (a.Kind == graph.AttrFloat || a.Kind == graph.AttrInt) {
		return tensor.FromFloat32(tensor.Shape{}, []float32{n.Float("value_float", 0)}), nil
	}
	if a, ok := n.Attrs["value_floats"]; ok && a.Kind == graph.AttrFloats {
		return tensor.FromFloat32(tensor.Shape{len(a.Floats)}, append([]float32(nil), a.Floats...)), nil
	}
	if a, ok := n.Attrs["value_int"]; ok && a.Kind == graph.AttrInt {
		return tensor.FromInt64(tensor.Shape{}, []int64{a.Int}), nil
	}
	if a, ok := n.Attrs["value_ints"]; ok && a.Kind == graph.AttrInts {
		return tensor.FromInt64(tensor.Shape{len(a.Ints)}, append([]int64(nil), a.Ints...)), nil
	}
	for _, k := range []string{"sparse_value", "value_string", "value_strings"} {
		if n.Has(k) {
			return nil, Errorf(n, "attribute %s is not supported", k)
		}
	}
	return nil, Errorf(n, "has no value attribute")
}

func constantInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 0, 0, 1, 1); err != nil {
		return nil, err
	}
	t, err := constantValue(n)
	if err != nil {
		return nil, err
	}
	return one(t.DType, t.Shape.Clone()), nil
}

func constantPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	t, err := constantValue(n)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if len(out) == 0 || out[0] == nil || out[0].Len() != t.Len() || out[0].DType != t.DType {
			return Errorf(n, "output is not allocated as %v", t)
		}
		copyTensor(out[0], t)
		return nil
	}), nil
}

func cosValue(n *graph.Node) (*tensor.Tensor, error) {
	v := n.TensorAttr("value")
	if v == nil {
		return tensor.FromFloat32(tensor.Shape{1}, []float32{0}), nil
	}
	if v.Len() != 1 {
		return nil, Errorf(n, "value must have one element, has shape %v", v.Shape)
	}
	return v, nil
}

func cosInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	v, err := cosValue(n)
	if err != nil {
		return nil, err
	}
	s, err := constInts(n, in, 0, "shape")
	if err != nil {
		return nil, err
	}
	if len(in[0].Shape) != 1 {
		return nil, Errorf(n, "shape input must be 1-D, has shape %v", in[0].Shape)
	}
	out := make(tensor.Shape, len(s))
	total := int64(1)
	for i, d := range s {
		if d < 0 || d > math.MaxInt32 {
			return nil, Errorf(n, "invalid dimension %d in shape %v", d, s)
		}
		out[i] = int(d)
		total *= d
		if total > math.MaxInt32 {
			return nil, Errorf(n, "shape %v is too large", s)
		}
	}
	return one(v.DType, out), nil
}

func cosPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	v, err := cosValue(n)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 1); err != nil {
			return err
		}
		o := out[0]
		switch o.DType {
		case tensor.Float32:
			for i := range o.F {
				o.F[i] = v.F[0]
			}
		case tensor.Int64:
			for i := range o.I {
				o.I[i] = v.I[0]
			}
		case tensor.Bool:
			for i := range o.B {
				o.B[i] = v.B[0]
			}
		}
		return nil
	}), nil
}

func rangeInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 3, 3, 1, 1); err != nil {
		return nil, err
	}
	for i := range in {
		if err := wantDType(n, in, i, tensor.Float32, tensor.Int64); err != nil {
			return nil, err
		}
		if in[i].DType != in[0].DType {
			return nil, Errorf(n, "input types differ: %v and %v", in[0].DType, in[i].DType)
		}
		if in[i].Shape.Numel() != 1 {
			return nil, Errorf(n, "input %d must be a scalar, has shape %v", i, in[i].Shape)
		}
		if in[i].Const == nil {
			return nil, Errorf(n, "input %d must be a constant for static shape inference", i)
		}
	}
	cnt, err := rangeCount(n, in[0].Const, in[1].Const, in[2].Const)
	if err != nil {
		return nil, err
	}
	return one(in[0].DType, tensor.Shape{cnt}), nil
}

func rangeCount(n *graph.Node, s, l, d *tensor.Tensor) (int, error) {
	var c float64
	if s.DType == tensor.Int64 {
		if d.I[0] == 0 {
			return 0, Errorf(n, "delta is zero")
		}
		c = math.Ceil(float64(l.I[0]-s.I[0]) / float64(d.I[0]))
	} else {
		if d.F[0] == 0 {
			return 0, Errorf(n, "delta is zero")
		}
		c = math.Ceil((float64(l.F[0]) - float64(s.F[0])) / float64(d.F[0]))
	}
	if c > math.MaxInt32 || c != c {
		return 0, Errorf(n, "range has too many elements")
	}
	return int(max(c, 0)), nil
}

func rangePrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 3); err != nil {
			return err
		}
		o := out[0]
		if o.DType == tensor.Int64 {
			for i := range o.I {
				o.I[i] = in[0].I[0] + int64(i)*in[2].I[0]
			}
			return nil
		}
		for i := range o.F {
			o.F[i] = in[0].F[0] + float32(i)*in[2].F[0]
		}
		return nil
	}), nil
}
