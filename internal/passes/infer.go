// Package passes transforms a loaded graph into the form the executor and the
// planner work on: static shapes for every value, shape arithmetic folded into
// constants, no-op nodes removed, BatchNormalization folded into the
// preceding convolution, and activations fused into Conv and Gemm.
package passes

import (
	"fmt"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/tensor"
)

// maxFoldBytes bounds the size of a value computed at load time; larger
// all-constant results (rare: a ConstantOfShape that fills an activation)
// stay nodes so the model file's size does not balloon in memory twice.
const maxFoldBytes = 64 << 20

// SetInputShapes fixes the shapes of g's inputs. shapes maps an input name
// to its shape; inputs not named keep their declared shape with unknown
// dimensions (symbolic batch sizes) set to 1. A given shape must agree with
// every known declared dimension.
func SetInputShapes(g *graph.Graph, shapes map[string]tensor.Shape) error {
	for i, in := range g.Inputs {
		if in.DType == 0 {
			return fmt.Errorf("graph input %q has no declared element type", in.Name)
		}
		s, ok := shapes[in.Name]
		if !ok {
			if in.Shape == nil {
				return fmt.Errorf("graph input %q has no declared shape; give one", in.Name)
			}
			s = in.Shape.Clone()
			for d := range s {
				if s[d] < 0 {
					s[d] = 1
				}
			}
		} else if in.Shape != nil {
			if len(s) != len(in.Shape) {
				return fmt.Errorf("graph input %q: shape %v has rank %d, the model declares rank %d (%v)", in.Name, s, len(s), len(in.Shape), declared(in.Shape))
			}
			for d := range s {
				if in.Shape[d] >= 0 && in.Shape[d] != s[d] {
					return fmt.Errorf("graph input %q: shape %v does not match the model's declared shape %v", in.Name, s, declared(in.Shape))
				}
			}
		}
		g.Inputs[i].Shape = s.Clone()
	}
	return nil
}

func declared(s tensor.Shape) string {
	out := "["
	for i, d := range s {
		if i > 0 {
			out += "×"
		}
		if d < 0 {
			out += "?"
		} else {
			out += fmt.Sprint(d)
		}
	}
	return out + "]"
}

// InferShapes computes the type and shape of every value (g.Values) from the
// (already fixed) input shapes. With fold, nodes whose inputs are all
// constant are evaluated now and become constants.
func InferShapes(g *graph.Graph, fold bool) error {
	g.Values = map[string]graph.ValueInfo{}
	for _, in := range g.Inputs {
		g.Values[in.Name] = in
	}
	for name, t := range g.Constants {
		g.Values[name] = graph.ValueInfo{Name: name, DType: t.DType, Shape: t.Shape}
	}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		def, ok := ops.Lookup(n.Op)
		if !ok {
			return fmt.Errorf("%v: unsupported operator %s", n, n.Op)
		}
		in := ops.InputsOf(g, n)
		for i, x := range in {
			if x.Present && x.DType == 0 {
				return fmt.Errorf("%v: input %q has no known type", n, n.Inputs[i])
			}
		}
		outs, err := def.Infer(n, g.Opset, in)
		if err != nil {
			return err
		}
		if len(outs) < len(n.Outputs) {
			// Optional outputs the operator does not produce.
			for i := len(outs); i < len(n.Outputs); i++ {
				if n.Outputs[i] != "" {
					return fmt.Errorf("%v: output %d (%q) is not supported", n, i, n.Outputs[i])
				}
			}
		}
		var size int64
		for i, name := range n.Outputs {
			if name == "" {
				continue
			}
			outs[i].Name = name
			g.Values[name] = outs[i]
			size += int64(outs[i].Shape.Numel()) * int64(outs[i].DType.Size())
		}
		if fold && allConst(in) && size <= maxFoldBytes {
			if err := evalNode(g, n, def, in, outs); err != nil {
				return err
			}
			continue
		}
		kept = append(kept, n)
	}
	g.Nodes = kept
	for i, o := range g.Outputs {
		v, ok := g.Values[o.Name]
		if !ok {
			return fmt.Errorf("graph output %q is never computed", o.Name)
		}
		g.Outputs[i] = v
	}
	return nil
}

func allConst(in []ops.Input) bool {
	for _, x := range in {
		if x.Present && x.Const == nil {
			return false
		}
	}
	return true
}

// evalNode runs n on its constant inputs and stores its outputs as constants.
func evalNode(g *graph.Graph, n *graph.Node, def *ops.Def, in []ops.Input, outs []graph.ValueInfo) error {
	args := make([]*tensor.Tensor, len(in))
	for i, x := range in {
		args[i] = x.Const
	}
	res := make([]*tensor.Tensor, len(outs))
	for i, o := range outs {
		res[i] = tensor.New(o.DType, o.Shape)
	}
	if def.View {
		if len(n.Outputs) > 0 && n.Outputs[0] != "" {
			g.Constants[n.Outputs[0]] = args[0].Reshaped(outs[0].Shape)
		}
		return nil
	}
	k, err := def.Prepare(n, g.Opset, in, outs)
	if err != nil {
		return err
	}
	if err := k.Run(nil, args, res); err != nil {
		return fmt.Errorf("%v: evaluating at load time: %w", n, err)
	}
	for i, name := range n.Outputs {
		if name != "" {
			g.Constants[name] = res[i]
		}
	}
	return nil
}
