package ops

import (
	"github.com/iop-edge/iop/internal/graph"
)

// InputsOf describes n's inputs from g's constants and inferred values.
func InputsOf(g *graph.Graph, n *graph.Node) []Input {
	in := make([]Input, len(n.Inputs))
	for i, name := range n.Inputs {
		if name == "" {
			continue
		}
		in[i].Present = true
		in[i].Name = name
		if t, ok := g.Constants[name]; ok {
			in[i].Const = t
			in[i].DType = t.DType
			in[i].Shape = t.Shape
			continue
		}
		if v, ok := g.Values[name]; ok {
			in[i].ValueInfo = v
		}
	}
	return in
}

// OutputsOf returns the inferred infos of n's outputs.
func OutputsOf(g *graph.Graph, n *graph.Node) []graph.ValueInfo {
	out := make([]graph.ValueInfo, len(n.Outputs))
	for i, name := range n.Outputs {
		out[i] = g.Values[name]
		out[i].Name = name
	}
	return out
}

// NodeFLOPs is the FLOP count of n in g (after shape inference).
func NodeFLOPs(g *graph.Graph, n *graph.Node) int64 {
	d, ok := Lookup(n.Op)
	if !ok || d.FLOPs == nil {
		return 0
	}
	return d.FLOPs(n, InputsOf(g, n), OutputsOf(g, n))
}

// NodeClass is the cost-model class of n in g ("" for unknown operators).
func NodeClass(g *graph.Graph, n *graph.Node) Class {
	if d, ok := Lookup(n.Op); ok {
		return d.ClassFor(n, InputsOf(g, n))
	}
	return ""
}

// NodeParamBytes is the size of the constant inputs n reads.
func NodeParamBytes(g *graph.Graph, n *graph.Node) int64 {
	var b int64
	for _, name := range n.Inputs {
		if t, ok := g.Constants[name]; ok {
			b += t.Bytes()
		}
	}
	return b
}

// NodeOutputBytes is the size of n's outputs.
func NodeOutputBytes(g *graph.Graph, n *graph.Node) int64 {
	var b int64
	for _, name := range n.Outputs {
		if v, ok := g.Values[name]; ok {
			b += int64(v.Shape.Numel()) * int64(v.DType.Size())
		}
	}
	return b
}
