package passes

import (
	"fmt"
	"math"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// Options selects the optional rewrites of Optimize.
type Options struct {
	// NoFuse keeps BatchNormalization and activations as separate nodes.
	NoFuse bool
}

// Optimize fixes input shapes, infers every value's shape, folds constant
// subgraphs, removes no-op nodes, folds BatchNormalization into Conv and
// fuses activations into Conv and Gemm. It modifies g in place.
func Optimize(g *graph.Graph, inputShapes map[string]tensor.Shape, opt Options) error {
	if err := SetInputShapes(g, inputShapes); err != nil {
		return err
	}
	if err := InferShapes(g, true); err != nil {
		return err
	}
	RemoveNoOps(g)
	if !opt.NoFuse {
		FoldBatchNorm(g)
		FuseActivations(g)
	}
	g.Prune()
	return g.Validate()
}

// RemoveNoOps removes Identity and inference-mode Dropout nodes, reading
// their input directly. A no-op that maps a graph input straight to a graph
// output is kept.
func RemoveNoOps(g *graph.Graph) {
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		noop := n.Op == "Identity" || (n.Op == "Dropout" && (len(n.Outputs) < 2 || n.Outputs[1] == ""))
		if noop && len(n.Inputs) > 0 && n.Inputs[0] != "" {
			src, dst := n.Inputs[0], n.Outputs[0]
			if !g.IsOutput(dst) {
				g.Rename(dst, src)
				delete(g.Values, dst)
				continue
			}
			if !g.IsOutput(src) && !isInput(g, src) && !g.IsConst(src) {
				// Let the producer write the graph output directly.
				renameDef(g, src, dst)
				continue
			}
		}
		kept = append(kept, n)
	}
	g.Nodes = kept
}

func isInput(g *graph.Graph, name string) bool {
	for _, in := range g.Inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

// renameDef renames value old to new everywhere: its producer's output and
// every use.
func renameDef(g *graph.Graph, old, new string) {
	for _, n := range g.Nodes {
		for i, o := range n.Outputs {
			if o == old {
				n.Outputs[i] = new
			}
		}
	}
	g.Rename(old, new)
	v := g.Values[old]
	v.Name = new
	g.Values[new] = v
	delete(g.Values, old)
}

// soleConsumer returns the only node reading value name, or nil when it has
// several readers or is a graph output.
func soleConsumer(g *graph.Graph, cons map[string][]*graph.Node, name string) *graph.Node {
	if g.IsOutput(name) || len(cons[name]) != 1 {
		return nil
	}
	return cons[name][0]
}

// FoldBatchNorm folds an inference BatchNormalization into the Conv that
// alone feeds it: W' = W·s, b' = (b−mean)·s + beta with s = gamma/√(var+ε).
func FoldBatchNorm(g *graph.Graph) {
	cons := g.Consumers()
	removed := map[*graph.Node]bool{}
	for _, conv := range g.Nodes {
		if conv.Op != "Conv" || conv.Has(graph.FusedActivation) || len(conv.Outputs) != 1 {
			continue
		}
		bn := soleConsumer(g, cons, conv.Outputs[0])
		if bn == nil || bn.Op != "BatchNormalization" || len(bn.Inputs) < 5 || bn.Inputs[0] != conv.Outputs[0] {
			continue
		}
		if len(bn.Outputs) > 1 && anyNonEmpty(bn.Outputs[1:]) {
			continue
		}
		w, ok := g.Constants[conv.Inputs[1]]
		if !ok || w.DType != tensor.Float32 {
			continue
		}
		var params [4]*tensor.Tensor
		okAll := true
		for i := range params {
			params[i], ok = g.Constants[bn.Inputs[1+i]]
			if !ok || params[i].DType != tensor.Float32 || params[i].Len() != w.Shape[0] {
				okAll = false
			}
		}
		if !okAll {
			continue
		}
		var bias *tensor.Tensor
		if len(conv.Inputs) > 2 && conv.Inputs[2] != "" {
			if bias, ok = g.Constants[conv.Inputs[2]]; !ok {
				continue
			}
		}
		eps := float64(bn.Float("epsilon", 1e-5))
		gamma, beta, mean, variance := params[0].F, params[1].F, params[2].F, params[3].F
		cout := w.Shape[0]
		per := w.Len() / cout
		nw := tensor.New(tensor.Float32, w.Shape)
		nb := tensor.New(tensor.Float32, tensor.Shape{cout})
		for o := 0; o < cout; o++ {
			s := float32(float64(gamma[o]) / math.Sqrt(float64(variance[o])+eps))
			for j := 0; j < per; j++ {
				nw.F[o*per+j] = w.F[o*per+j] * s
			}
			b := float32(0)
			if bias != nil {
				b = bias.F[o]
			}
			nb.F[o] = (b-mean[o])*s + beta[o]
		}
		wName := g.UniqueName(conv.Name + ".weight_bn")
		g.Constants[wName] = nw
		bName := g.UniqueName(conv.Name + ".bias_bn")
		g.Constants[bName] = nb
		conv.Inputs = []string{conv.Inputs[0], wName, bName}
		out := bn.Outputs[0]
		delete(g.Values, conv.Outputs[0])
		conv.Outputs[0] = out
		removed[bn] = true
	}
	dropNodes(g, removed)
}

func anyNonEmpty(s []string) bool {
	for _, x := range s {
		if x != "" {
			return true
		}
	}
	return false
}

func dropNodes(g *graph.Graph, removed map[*graph.Node]bool) {
	if len(removed) == 0 {
		return
	}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if !removed[n] {
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
}

// FuseActivations folds an activation node into the Conv, Gemm or float32
// Add that alone feeds it, recording it in the graph.FusedActivation
// attributes.
func FuseActivations(g *graph.Graph) {
	cons := g.Consumers()
	removed := map[*graph.Node]bool{}
	for _, n := range g.Nodes {
		if !fusable(g, n) || n.Has(graph.FusedActivation) || len(n.Outputs) != 1 {
			continue
		}
		act := soleConsumer(g, cons, n.Outputs[0])
		if act == nil || act.Inputs[0] != n.Outputs[0] {
			continue
		}
		alpha, beta, ok := activationParams(g, act)
		if !ok {
			continue
		}
		n.SetStr(graph.FusedActivation, act.Op)
		n.SetFloat(graph.FusedAlpha, alpha)
		n.SetFloat(graph.FusedBeta, beta)
		delete(g.Values, n.Outputs[0])
		n.Outputs[0] = act.Outputs[0]
		removed[act] = true
	}
	dropNodes(g, removed)
}

// fusable reports whether n can absorb the activation that follows it:
// Conv and Gemm apply it in their kernels' store, a float32 Add (residual
// connection) on each chunk it has just summed.
func fusable(g *graph.Graph, n *graph.Node) bool {
	switch n.Op {
	case "Conv", "Gemm":
		return true
	case "Add":
		return len(n.Outputs) == 1 && g.Values[n.Outputs[0]].DType == tensor.Float32
	}
	return false
}

// activationParams reports whether act can be fused and its parameters.
func activationParams(g *graph.Graph, act *graph.Node) (alpha, beta float32, ok bool) {
	switch act.Op {
	case "Relu", "Sigmoid", "Tanh", "HardSwish":
		return 0, 0, len(act.Inputs) == 1
	case "LeakyRelu":
		return act.Float("alpha", 0.01), 0, true
	case "HardSigmoid":
		return act.Float("alpha", 0.2), act.Float("beta", 0.5), true
	case "Clip":
		lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
		if g.Opset < 11 {
			return act.Float("min", lo), act.Float("max", hi), true
		}
		for i, p := range []*float32{&lo, &hi} {
			if len(act.Inputs) > i+1 && act.Inputs[i+1] != "" {
				t, isConst := g.Constants[act.Inputs[i+1]]
				if !isConst || t.DType != tensor.Float32 || t.Len() != 1 {
					return 0, 0, false
				}
				*p = t.F[0]
			}
		}
		return lo, hi, true
	}
	return 0, 0, false
}

// Describe returns a one-line summary of g, for logs.
func Describe(g *graph.Graph) string {
	return fmt.Sprintf("%s: %d nodes, %d constants, opset %d", g.Name, len(g.Nodes), len(g.Constants), g.Opset)
}
