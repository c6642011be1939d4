package onnx

import (
	"fmt"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// upgradeLegacy rewrites opset-6 constructs into their opset-7 form so the
// operators only implement modern semantics: the explicit `broadcast`/`axis`
// attributes of binary operators become numpy broadcasting (reshaping a
// constant second operand where `axis` aligns it), and attributes that
// carried no meaning in inference (is_test, consumed_inputs, spatial=1) are
// dropped.
func upgradeLegacy(g *graph.Graph) error {
	if g.Opset >= 7 {
		return nil
	}
	for _, n := range g.Nodes {
		delete(n.Attrs, "consumed_inputs")
		delete(n.Attrs, "is_test")
		switch n.Op {
		case "BatchNormalization":
			if n.Int("spatial", 1) != 1 {
				return fmt.Errorf("%v: spatial=0 batch normalization is not supported", n)
			}
			delete(n.Attrs, "spatial")
		case "Add", "Sub", "Mul", "Div", "Gemm", "Pow":
			bc := n.Int("broadcast", 0)
			delete(n.Attrs, "broadcast")
			if !n.Has("axis") {
				continue
			}
			axis := int(n.Int("axis", 0))
			delete(n.Attrs, "axis")
			if bc == 0 || n.Op == "Gemm" {
				continue
			}
			if err := alignLegacyOperand(g, n, axis); err != nil {
				return err
			}
		}
	}
	return nil
}

// alignLegacyOperand reshapes the constant second operand of a legacy
// broadcasting node so numpy broadcasting aligns it at axis of the first.
func alignLegacyOperand(g *graph.Graph, n *graph.Node, axis int) error {
	a := g.Values[n.Inputs[0]]
	var rankA int
	switch {
	case g.IsConst(n.Inputs[0]):
		rankA = len(g.Constants[n.Inputs[0]].Shape)
	case a.Shape != nil:
		rankA = len(a.Shape)
	default:
		for _, in := range g.Inputs {
			if in.Name == n.Inputs[0] {
				rankA = len(in.Shape)
			}
		}
	}
	b, ok := g.Constants[n.Inputs[1]]
	if !ok || rankA == 0 {
		return fmt.Errorf("%v: legacy broadcast with axis=%d needs a constant second operand and a known first-operand rank", n, axis)
	}
	if axis < 0 {
		axis += rankA
	}
	trail := rankA - axis - len(b.Shape)
	if trail < 0 {
		return fmt.Errorf("%v: legacy broadcast axis %d does not fit operand shapes", n, axis)
	}
	shape := append(b.Shape.Clone(), make(tensor.Shape, trail)...)
	for i := len(b.Shape); i < len(shape); i++ {
		shape[i] = 1
	}
	name := g.UniqueName(n.Inputs[1] + "_aligned")
	g.Constants[name] = b.Reshaped(shape)
	n.Inputs[1] = name
	return nil
}
