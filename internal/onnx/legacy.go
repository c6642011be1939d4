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

// alignLegacyOperand makes numpy broadcasting align the second operand of a
// legacy broadcasting node at axis of the first: a constant operand is
// reshaped, another gets trailing unit axes from an inserted Unsqueeze.
func alignLegacyOperand(g *graph.Graph, n *graph.Node, axis int) error {
	rankA, okA := declaredRank(g, n.Inputs[0])
	rankB, okB := declaredRank(g, n.Inputs[1])
	if !okA || !okB {
		return fmt.Errorf("%v: legacy broadcast with axis=%d needs operands of known rank", n, axis)
	}
	if axis < 0 {
		axis += rankA
	}
	trail := rankA - axis - rankB
	if trail < 0 || axis < 0 {
		return fmt.Errorf("%v: legacy broadcast axis %d does not fit operands of rank %d and %d", n, axis, rankA, rankB)
	}
	if trail == 0 {
		return nil
	}
	if b, ok := g.Constants[n.Inputs[1]]; ok {
		shape := append(b.Shape.Clone(), make(tensor.Shape, trail)...)
		for i := len(b.Shape); i < len(shape); i++ {
			shape[i] = 1
		}
		name := g.UniqueName(n.Inputs[1] + "_aligned")
		g.Constants[name] = b.Reshaped(shape)
		n.Inputs[1] = name
		return nil
	}
	axes := make([]int, trail)
	for i := range axes {
		axes[i] = rankB + i
	}
	out := g.UniqueName(n.Inputs[1] + "_aligned")
	u := &graph.Node{Name: out, Op: "Unsqueeze", Inputs: []string{n.Inputs[1]}, Outputs: []string{out}}
	u.SetInts("axes", axes...)
	n.Inputs[1] = out
	g.Nodes = append(g.Nodes, u)
	return g.TopoSort()
}

// declaredRank is the rank of a constant or declared graph input.
func declaredRank(g *graph.Graph, name string) (int, bool) {
	if t, ok := g.Constants[name]; ok {
		return len(t.Shape), true
	}
	for _, in := range g.Inputs {
		if in.Name == name && in.Shape != nil {
			return len(in.Shape), true
		}
	}
	return 0, false
}
