package partition

import (
	"fmt"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// Operator rules: for an operator and the region of its output a device
// computes, which region of each input it needs, and the local operator that
// computes exactly that region from exactly those input regions.

// elementwise operators: output region i needs the same region of each
// (numpy-broadcast) input.
var elementwise = map[string]bool{
	"Relu": true, "LeakyRelu": true, "PRelu": true, "Clip": true, "Sigmoid": true, "HardSigmoid": true,
	"HardSwish": true, "Tanh": true, "Add": true, "Sub": true, "Mul": true, "Div": true, "Sum": true,
	"Identity": true, "Dropout": true, "Neg": true, "Exp": true, "Sqrt": true, "Floor": true, "Ceil": true,
	"Min": true, "Max": true, "Pow": true, "Where": true, "Equal": true,
}

// Splittable reports whether op's output may be split along axis (1:
// channels, 2: rows) at all; the planner uses it to restrict schemes.
func Splittable(g *graph.Graph, n *graph.Node, axis int) bool {
	if len(n.Outputs) != 1 {
		return false
	}
	out := g.Values[n.Outputs[0]]
	if axis >= len(out.Shape) || out.DType != tensor.Float32 {
		return false
	}
	switch {
	case elementwise[n.Op]:
		return true
	case n.Op == "BatchNormalization", n.Op == "GlobalAveragePool", n.Op == "GlobalMaxPool":
		return axis == 1
	case n.Op == "Conv", n.Op == "MaxPool", n.Op == "AveragePool":
		if axis == 2 && n.Op == "AveragePool" && n.Int("count_include_pad", 0) == 1 && n.Int("ceil_mode", 0) == 1 {
			return false
		}
		return len(out.Shape) == 4
	case n.Op == "LRN":
		return axis == 2
	case n.Op == "Concat":
		return true
	case n.Op == "Gemm":
		return axis == 1 && n.Int("transA", 0) == 0
	case n.Op == "MatMul":
		return axis == len(out.Shape)-1
	case n.Op == "Flatten", n.Op == "Reshape":
		return axis == 1 && flattenLike(g, n)
	}
	return false
}

// SplitUnit is the granularity a split of n's output along axis must
// respect (grouped convolutions split at group boundaries; a flatten of
// [1,C,H,W] splits at whole channels).
func SplitUnit(g *graph.Graph, n *graph.Node, axis int) int {
	switch n.Op {
	case "Conv":
		if axis == 1 {
			grp := int(n.Int("group", 1))
			if grp > 1 {
				return g.Values[n.Outputs[0]].Shape[1] / grp
			}
		}
	case "Flatten", "Reshape":
		in := g.Values[n.Inputs[0]].Shape
		if len(in) == 4 {
			return in[2] * in[3]
		}
	}
	return 1
}

// flattenLike reports whether a Flatten/Reshape maps [1,C,H,W] to [1,C·H·W]
// (so a feature range of whole channels is a channel range of the input).
func flattenLike(g *graph.Graph, n *graph.Node) bool {
	in, ok := g.Values[n.Inputs[0]]
	out := g.Values[n.Outputs[0]]
	if !ok {
		return false
	}
	return len(out.Shape) == 2 && out.Shape[0] == 1 && len(in.Shape) >= 2 && in.Shape[0] == 1 && out.Shape[1] == in.Shape.Numel()
}

// broadcastBox projects an output region onto an input broadcast to the
// output shape (numpy rules: trailing alignment, size-1 axes broadcast).
func broadcastBox(in, outShape tensor.Shape, out Box) Box {
	b := make(Box, len(in))
	off := len(outShape) - len(in)
	for j := range in {
		if in[j] != outShape[off+j] {
			b[j] = Range{0, in[j]} // a broadcast axis (size 1)
			continue
		}
		b[j] = out[off+j]
	}
	return b
}

// window holds a pooling/convolution window's geometry on one spatial axis.
type window struct{ k, s, d, padB, padE int }

// windows resolves kernel, strides, dilations and pads (auto_pad included)
// for the spatial axes of a Conv or pooling node.
func windows(n *graph.Node, in, out, weight tensor.Shape) ([]window, error) {
	sp := len(in) - 2
	if sp < 1 {
		return nil, fmt.Errorf("%v: input rank %d has no spatial axes", n, len(in))
	}
	ks := n.Ints("kernel_shape", nil)
	if ks == nil && weight != nil {
		ks = []int(weight[2:])
	}
	if len(ks) != sp {
		return nil, fmt.Errorf("%v: kernel_shape %v does not match %d spatial axes", n, ks, sp)
	}
	ws := make([]window, sp)
	strides := n.Ints("strides", nil)
	dil := n.Ints("dilations", nil)
	pads := n.Ints("pads", nil)
	auto := n.Str("auto_pad", "NOTSET")
	for i := range ws {
		w := window{k: ks[i], s: 1, d: 1}
		if strides != nil {
			w.s = strides[i]
		}
		if dil != nil {
			w.d = dil[i]
		}
		eff := (w.k-1)*w.d + 1
		switch auto {
		case "SAME_UPPER", "SAME_LOWER":
			total := max(0, (out[2+i]-1)*w.s+eff-in[2+i])
			w.padB = total / 2
			if auto == "SAME_LOWER" {
				w.padB = total - total/2
			}
			w.padE = total - w.padB
		case "VALID":
		default:
			if pads != nil {
				w.padB, w.padE = pads[i], pads[sp+i]
			}
		}
		ws[i] = w
	}
	return ws, nil
}

// inputRange is the input range (clipped to [0,size)) an output range needs,
// with the local padding that reproduces the clipped part.
func (w window) inputRange(out Range, size int) (Range, int, int) {
	start := out.Lo*w.s - w.padB
	end := (out.Hi-1)*w.s - w.padB + (w.k-1)*w.d + 1
	r := Range{max(0, start), min(size, end)}
	if r.Hi < r.Lo {
		r.Hi = r.Lo
	}
	return r, max(0, -start), max(0, end-size)
}

// NeedBox returns the region of input i that computing region out of n's
// output needs. shapes gives the full shapes of n's inputs.
func NeedBox(n *graph.Node, i int, in []tensor.Shape, outShape tensor.Shape, out Box) (Box, error) {
	if in[i] == nil {
		return nil, nil
	}
	full := Full(outShape)
	if out.Equal(full) {
		return Full(in[i]), nil
	}
	switch {
	case elementwise[n.Op]:
		return broadcastBox(in[i], outShape, out), nil
	case n.Op == "BatchNormalization":
		if i == 0 {
			return out.Clone(), nil
		}
		return Box{out[1]}, nil
	case n.Op == "LRN":
		if out[1].Len() != outShape[1] {
			return nil, fmt.Errorf("%v: LRN output cannot be split by channels", n)
		}
		return out.Clone(), nil
	case n.Op == "GlobalAveragePool" || n.Op == "GlobalMaxPool":
		b := Full(in[0])
		b[1] = out[1]
		return b, nil
	case n.Op == "Conv" || n.Op == "MaxPool" || n.Op == "AveragePool":
		var wshape tensor.Shape
		if n.Op == "Conv" {
			wshape = in[1]
		}
		if n.Op == "Conv" && i > 0 {
			if i == 1 {
				b := Full(in[1])
				b[0] = out[1]
				return b, nil
			}
			return Box{out[1]}, nil
		}
		ws, err := windows(n, in[0], outShape, wshape)
		if err != nil {
			return nil, err
		}
		b := Full(in[0])
		b[0] = out[0]
		b[1] = out[1]
		if n.Op == "Conv" {
			grp := int(n.Int("group", 1))
			if grp == 1 {
				b[1] = Range{0, in[0][1]}
			} else {
				ocg, icg := outShape[1]/grp, in[0][1]/grp
				if out[1].Lo%ocg != 0 || out[1].Hi%ocg != 0 {
					return nil, fmt.Errorf("%v: output channels %d:%d split a group of %d", n, out[1].Lo, out[1].Hi, ocg)
				}
				b[1] = Range{out[1].Lo / ocg * icg, out[1].Hi / ocg * icg}
			}
		}
		for a, w := range ws {
			b[2+a], _, _ = w.inputRange(out[2+a], in[0][2+a])
		}
		return b, nil
	case n.Op == "Concat":
		axis := int(n.Int("axis", 1))
		if axis < 0 {
			axis += len(outShape)
		}
		off := 0
		for j := 0; j < i; j++ {
			off += in[j][axis]
		}
		b := out.Clone()
		b[axis] = Range{max(out[axis].Lo, off) - off, min(out[axis].Hi, off+in[i][axis]) - off}
		if b[axis].Hi < b[axis].Lo {
			b[axis] = Range{0, 0}
		}
		return b, nil
	case n.Op == "Gemm":
		transB := n.Int("transB", 0) == 1
		switch i {
		case 0:
			return Box{out[0], {0, in[0][1]}}, nil
		case 1:
			if transB {
				return Box{out[1], {0, in[1][1]}}, nil
			}
			return Box{{0, in[1][0]}, out[1]}, nil
		default:
			return broadcastBox(in[2], outShape, out), nil
		}
	case n.Op == "MatMul":
		r := len(outShape)
		if i == 0 {
			b := Full(in[0])
			b[len(b)-2] = out[r-2]
			return b, nil
		}
		b := Full(in[1])
		b[len(b)-1] = out[r-1]
		return b, nil
	case n.Op == "Flatten" || n.Op == "Reshape":
		if i > 0 {
			return Full(in[i]), nil
		}
		if len(in[0]) == 4 && len(outShape) == 2 && out[0].Len() == outShape[0] {
			hw := in[0][2] * in[0][3]
			if out[1].Lo%hw == 0 && out[1].Hi%hw == 0 {
				return Box{{0, in[0][0]}, {out[1].Lo / hw, out[1].Hi / hw}, {0, in[0][2]}, {0, in[0][3]}}, nil
			}
		}
		return nil, fmt.Errorf("%v: output region %v does not map to a region of its input", n, out)
	}
	return nil, fmt.Errorf("%v: operator %s cannot compute part of its output (region %v of %v)", n, n.Op, out, outShape)
}

// LocalNode returns the operator that computes region out of n's output
// from the regions inBoxes of its inputs (boxes nil for absent inputs or
// inputs the region does not need). Input names are left as in n; the
// caller renames them.
func LocalNode(n *graph.Node, in []tensor.Shape, outShape tensor.Shape, out Box, inBoxes []Box) (*graph.Node, error) {
	ln := n.Clone()
	if out.Equal(Full(outShape)) {
		return ln, nil
	}
	switch n.Op {
	case "Conv", "MaxPool", "AveragePool":
		var wshape tensor.Shape
		if n.Op == "Conv" {
			wshape = in[1]
		}
		ws, err := windows(n, in[0], outShape, wshape)
		if err != nil {
			return nil, err
		}
		sp := len(ws)
		// A region with every row and column (a channel split) keeps the
		// operator's own window geometry (pads, auto_pad, ceil_mode).
		spatialFull := true
		for a := range ws {
			spatialFull = spatialFull && out[2+a] == Range{0, outShape[2+a]}
		}
		pads := make([]int, 2*sp)
		for a, w := range ws {
			_, pb, pe := w.inputRange(out[2+a], in[0][2+a])
			pads[a], pads[sp+a] = pb, pe
			if !spatialFull && n.Op == "AveragePool" && n.Int("count_include_pad", 0) == 1 && (pb > w.padB || pe > w.padE) {
				return nil, fmt.Errorf("%v: a row split would count padding the model does not have (ceil_mode with count_include_pad)", n)
			}
		}
		if !spatialFull {
			delete(ln.Attrs, "auto_pad")
			ln.SetInts("pads", pads...)
			if n.Op != "Conv" {
				ln.SetInt("ceil_mode", 0)
			}
		}
		if n.Op == "Conv" && n.Int("group", 1) > 1 {
			grp := int(n.Int("group", 1))
			ocg := outShape[1] / grp
			ln.SetInt("group", int64(out[1].Len()/ocg))
		}
	case "Concat":
		var keep []string
		for i, b := range inBoxes {
			if b != nil && !b.Empty() {
				keep = append(keep, n.Inputs[i])
			}
		}
		ln.Inputs = keep
	case "Reshape":
		// The caller supplies the local shape constant (see compile).
	}
	return ln, nil
}
