package ops

import (
	"math"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

// parallelMin is the number of elements below which elementwise kernels run
// on the calling thread: splitting costs a few microseconds, which only pays
// off for larger tensors.
const parallelMin = 1 << 15

// splitElems runs fn over [0,n) on the pool when n is large enough, else
// inline.
func splitElems(p *kernels.Pool, n int, fn func(lo, hi int)) {
	if n < parallelMin || p.Threads() <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	p.Parallel(n, fn)
}

// splitItems runs fn over [0,items) where each item costs about perItem
// elements of work: parallel only when the total is large.
func splitItems(p *kernels.Pool, items, perItem int, fn func(lo, hi int)) {
	if items*perItem < parallelMin || p.Threads() <= 1 || items <= 1 {
		if items > 0 {
			fn(0, items)
		}
		return
	}
	p.Parallel(items, fn)
}

// arity checks the number of inputs and outputs of a node. Inputs beyond
// minIn may be omitted (absent or named "").
func arity(n *graph.Node, in []Input, minIn, maxIn, minOut, maxOut int) error {
	if len(in) < minIn || len(in) > maxIn {
		if minIn == maxIn {
			return Errorf(n, "has %d inputs, want %d", len(in), minIn)
		}
		return Errorf(n, "has %d inputs, want %d to %d", len(in), minIn, maxIn)
	}
	for i := 0; i < minIn; i++ {
		if !in[i].Present {
			return Errorf(n, "required input %d is missing", i)
		}
	}
	if len(n.Outputs) < minOut || len(n.Outputs) > maxOut {
		if minOut == maxOut {
			return Errorf(n, "has %d outputs, want %d", len(n.Outputs), minOut)
		}
		return Errorf(n, "has %d outputs, want %d to %d", len(n.Outputs), minOut, maxOut)
	}
	for i, s := range in {
		if !s.Present {
			continue
		}
		for _, d := range s.Shape {
			if d < 0 {
				return Errorf(n, "input %d has unknown or negative dimension in shape %v", i, s.Shape)
			}
		}
	}
	return nil
}

// present reports whether optional input i is given.
func present(in []Input, i int) bool { return i < len(in) && in[i].Present }

// extraOutputs reports whether any output after the first k is requested.
func extraOutputs(n *graph.Node, k int) bool {
	for i := k; i < len(n.Outputs); i++ {
		if n.Outputs[i] != "" {
			return true
		}
	}
	return false
}

// wantDType checks that input i has one of the given element types.
func wantDType(n *graph.Node, in []Input, i int, dts ...tensor.DType) error {
	for _, d := range dts {
		if in[i].DType == d {
			return nil
		}
	}
	if len(dts) == 1 {
		return Errorf(n, "input %d has type %v, want %v", i, in[i].DType, dts[0])
	}
	return Errorf(n, "input %d has unsupported type %v (want one of %v)", i, in[i].DType, dts)
}

// normAxis maps axis in [-rank, rank) to [0, rank).
func normAxis(n *graph.Node, axis, rank int) (int, error) {
	if axis < -rank || axis >= rank {
		return 0, Errorf(n, "axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}

// normAxes normalizes a list of axes and rejects duplicates.
func normAxes(n *graph.Node, axes []int, rank int) ([]int, error) {
	out := make([]int, len(axes))
	seen := make(map[int]bool, len(axes))
	for i, a := range axes {
		v, err := normAxis(n, a, rank)
		if err != nil {
			return nil, err
		}
		if seen[v] {
			return nil, Errorf(n, "axis %d repeated in %v", a, axes)
		}
		seen[v] = true
		out[i] = v
	}
	return out, nil
}

// constInts returns the integer values of constant input i. It fails when
// the input is not a constant, since static shapes depend on it.
func constInts(n *graph.Node, in []Input, i int, what string) ([]int64, error) {
	c := in[i].Const
	if c == nil {
		return nil, Errorf(n, "%s (input %d) must be a constant for static shape inference", what, i)
	}
	switch c.DType {
	case tensor.Int64:
		return append([]int64(nil), c.I...), nil
	case tensor.Float32:
		out := make([]int64, len(c.F))
		for k, v := range c.F {
			out[k] = int64(v)
		}
		return out, nil
	}
	return nil, Errorf(n, "%s (input %d) has type %v, want int64", what, i, c.DType)
}

// toInts converts int64 values to int, clamping to the int range.
func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// attrInts64 returns an integer-list attribute as int64 values.
func attrInts64(n *graph.Node, name string) ([]int64, bool) {
	a, ok := n.Attrs[name]
	if !ok || a.Kind != graph.AttrInts {
		return nil, false
	}
	return a.Ints, true
}

// broadcastShapes returns the numpy broadcast of the given shapes.
func broadcastShapes(n *graph.Node, shapes ...tensor.Shape) (tensor.Shape, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make(tensor.Shape, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case d == o || d == 1:
			case o == 1:
				out[off+i] = d
			default:
				return nil, Errorf(n, "shapes %v are not broadcastable (dimension %d: %d vs %d)", shapesList(shapes), off+i, o, d)
			}
		}
	}
	return out, nil
}

type shapesList []tensor.Shape

func (s shapesList) String() string {
	str := ""
	for i, x := range s {
		if i > 0 {
			str += " and "
		}
		str += x.String()
	}
	return str
}

// bstrides returns the strides of a tensor of shape s broadcast to out (0
// along broadcast dimensions), aligned to out's rank.
func bstrides(s, out tensor.Shape) []int {
	st := make([]int, len(out))
	off := len(out) - len(s)
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 1 || out[off+i] == 1 {
			st[off+i] = acc
		}
		acc *= s[i]
	}
	return st
}

// forEachIndex calls fn for every element of out (row-major), passing the
// flat output index and the element offsets of each broadcast operand.
// It is the slow general path; fast paths live in the elementwise kernels.
func forEachIndex(out tensor.Shape, strides [][]int, fn func(i int, offs []int)) {
	total := out.Numel()
	if total == 0 {
		return
	}
	idx := make([]int, len(out))
	offs := make([]int, len(strides))
	for i := 0; i < total; i++ {
		fn(i, offs)
		for d := len(out) - 1; d >= 0; d-- {
			idx[d]++
			for k := range offs {
				offs[k] += strides[k][d]
			}
			if idx[d] < out[d] {
				break
			}
			for k := range offs {
				offs[k] -= strides[k][d] * out[d]
			}
			idx[d] = 0
		}
	}
}

// fusedAct reads the fused activation attributes of a Conv/Gemm node.
func fusedAct(n *graph.Node) (kernels.Act, error) {
	name := n.Str(graph.FusedActivation, "")
	var a kernels.Act
	switch name {
	case "":
		return a, nil
	case "Relu":
		a.Kind = kernels.ActRelu
	case "LeakyRelu":
		a.Kind = kernels.ActLeakyRelu
		a.Alpha = n.Float(graph.FusedAlpha, 0.01)
	case "Clip":
		a.Kind = kernels.ActClip
		a.Alpha = n.Float(graph.FusedAlpha, -math.MaxFloat32)
		a.Beta = n.Float(graph.FusedBeta, math.MaxFloat32)
	case "Sigmoid":
		a.Kind = kernels.ActSigmoid
	case "HardSigmoid":
		a.Kind = kernels.ActHardSigmoid
		a.Alpha = n.Float(graph.FusedAlpha, 0.2)
		a.Beta = n.Float(graph.FusedBeta, 0.5)
	case "HardSwish":
		a.Kind = kernels.ActHardSwish
	case "Tanh":
		a.Kind = kernels.ActTanh
	default:
		return a, Errorf(n, "unsupported fused activation %q", name)
	}
	return a, nil
}

// applyAct applies a fused activation to x, in parallel for large x.
func applyAct(p *kernels.Pool, a kernels.Act, x []float32) {
	if a.Kind == kernels.ActNone {
		return
	}
	splitElems(p, len(x), func(lo, hi int) { a.Apply(x[lo:hi]) })
}

// one returns a single output ValueInfo.
func one(dt tensor.DType, s tensor.Shape) []graph.ValueInfo {
	return []graph.ValueInfo{{DType: dt, Shape: s}}
}

// numelFLOPs counts k operations per output element.
func numelFLOPs(k int64) func(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
	return func(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
		var t int64
		for _, o := range out {
			t += int64(o.Shape.Numel())
		}
		return k * t
	}
}

// zeroFLOPs is the FLOP count of pure data movement.
func zeroFLOPs(*graph.Node, []Input, []graph.ValueInfo) int64 { return 0 }

// copyTensor copies src's data into dst (same type and size).
func copyTensor(dst, src *tensor.Tensor) {
	switch src.DType {
	case tensor.Float32:
		copy(dst.F, src.F)
	case tensor.Int64:
		copy(dst.I, src.I)
	case tensor.Bool:
		copy(dst.B, src.B)
	}
}

// checkOuts verifies the caller passed outputs of the expected sizes; it
// guards Run against a mis-allocated output instead of panicking.
func checkOuts(n *graph.Node, in, out []*tensor.Tensor, nin int) error {
	if len(in) < nin {
		return Errorf(n, "run with %d inputs, want at least %d", len(in), nin)
	}
	if len(out) == 0 || out[0] == nil {
		return Errorf(n, "run without an output tensor")
	}
	return nil
}

// shapeProd is the product of s[lo:hi].
func shapeProd(s tensor.Shape, lo, hi int) int {
	p := 1
	for _, d := range s[lo:hi] {
		p *= d
	}
	return p
}

// maxElems bounds the size of any inferred tensor (2^31 elements): larger
// shapes come from corrupt models and would overflow size arithmetic.
const maxElems = 1 << 31

// checkSize rejects shapes with negative dimensions or too many elements.
func checkSize(n *graph.Node, s tensor.Shape) error {
	total := int64(1)
	for _, d := range s {
		if d < 0 {
			return Errorf(n, "negative dimension in output shape %v", s)
		}
		if d > maxElems {
			return Errorf(n, "output shape %v is too large", s)
		}
		total *= int64(d)
		if total > maxElems {
			return Errorf(n, "output shape %v is too large", s)
		}
	}
	return nil
}
