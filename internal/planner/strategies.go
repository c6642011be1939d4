package planner

import (
	"fmt"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/plan"
)

// Single places the whole model on the fastest device whose memory holds it.
func Single(pr *Problem) (*plan.Plan, error) {
	var best *plan.Plan
	var merr *MemoryError
	for d := range pr.Cluster.Devices {
		p := singleOn(pr, d)
		if _, err := Evaluate(pr, p); err != nil {
			return nil, err
		}
		if Fits(pr, p.Prediction) >= 0 {
			m := p.Prediction.Devices[d].PeakMemoryBytes
			if e := newMemoryError(pr, d, m); merr == nil || m-e.Limit < merr.Need-merr.Limit {
				merr = e
			}
			continue
		}
		if best == nil || p.Prediction.LatencyMS < best.Prediction.LatencyMS {
			best = p
		}
	}
	if best == nil {
		merr.Whole = true
		return nil, merr
	}
	return best, nil
}

func singleOn(pr *Problem, d int) *plan.Plan {
	p := newPlan(pr, "single")
	for i := range p.Inputs {
		p.Inputs[i] = plan.Single(d)
	}
	for i := range p.Nodes {
		p.Nodes[i].Out, p.Nodes[i].Scheme = plan.Single(d), "LOCAL"
	}
	return p
}

// isLinearLayer reports whether n is a Conv, Gemm or MatMul.
func isLinearLayer(n *graph.Node) bool {
	return n.Op == "Conv" || n.Op == "Gemm" || n.Op == "MatMul"
}

// channelSplit returns the C layout of n's output with slices proportional
// to device speed, or false when n cannot be split by channels.
func channelSplit(pr *Problem, n *graph.Node) (plan.Layout, bool) {
	g := pr.Graph
	if !partition.Splittable(g, n, 1) {
		return plan.Layout{}, false
	}
	size := g.Values[n.Outputs[0]].Shape[1]
	return plan.Split(plan.C, Proportional(size, partition.SplitUnit(g, n, 1), speeds(pr, n))), true
}

// heightSplit returns the H layout of n's output proportional to device
// speed, or false when n cannot be split by rows.
func heightSplit(pr *Problem, n *graph.Node, weights []float64) (plan.Layout, bool) {
	g := pr.Graph
	if !partition.Splittable(g, n, 2) {
		return plan.Layout{}, false
	}
	size := g.Values[n.Outputs[0]].Shape[2]
	if weights == nil {
		weights = speeds(pr, n)
	}
	return plan.Split(plan.H, Proportional(size, 1, weights)), true
}

// OC splits every Conv/Gemm/MatMul by output channels; channel-wise
// operators that follow keep the channel split, and the activation is
// all-gathered before the next layer (which needs all of it).
func OC(pr *Problem) (*plan.Plan, error) {
	p := newPlan(pr, "oc")
	g := pr.Graph
	prod := g.Producers()
	for i, n := range g.Nodes {
		np := &p.Nodes[i]
		switch {
		case isLinearLayer(n):
			if l, ok := channelSplit(pr, n); ok {
				np.Out, np.Scheme = l, "OC"
			}
		case channelWise(n):
			// Follow the producer's channel split when it has one.
			if src, ok := prod[n.Inputs[0]]; ok {
				if sl := p.Nodes[indexOf(g, src)].Out; sl.Kind == plan.C && partition.Splittable(g, n, 1) && sameExtent(g, src, n, 1) {
					np.Out, np.Scheme = sl, "FOLLOW"
				}
			}
		}
	}
	return p, nil
}

// channelWise operators keep channels independent (so a channel split
// passes through them without communication).
func channelWise(n *graph.Node) bool {
	switch n.Op {
	case "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "BatchNormalization",
		"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool":
		return true
	}
	return false
}

func sameExtent(g *graph.Graph, a, b *graph.Node, axis int) bool {
	sa, sb := g.Values[a.Outputs[0]].Shape, g.Values[b.Outputs[0]].Shape
	return axis < len(sa) && axis < len(sb) && sa[axis] == sb[axis]
}

func indexOf(g *graph.Graph, n *graph.Node) int {
	for i, m := range g.Nodes {
		if m == n {
			return i
		}
	}
	return -1
}

// HP splits every Conv and pooling operator by output rows, gathering the
// whole activation after each operator and re-slicing it for the next (how
// the IOP paper models spatial partitioning). Fully connected layers run on
// the fastest device.
func HP(pr *Problem) (*plan.Plan, error) {
	p := newPlan(pr, "hp")
	g := pr.Graph
	fast := fastest(pr)
	r := plan.Replicated()
	for i, n := range g.Nodes {
		np := &p.Nodes[i]
		switch {
		case n.Op == "Conv" || n.Op == "MaxPool" || n.Op == "AveragePool" || n.Op == "LRN" || elementwiseSpatial(g, n):
			if l, ok := heightSplit(pr, n, nil); ok {
				np.Out, np.Scheme = l, "SP"
				np.Via = make([]*plan.Layout, len(n.Inputs))
				for k, in := range n.Inputs {
					if in != "" && !g.IsConst(in) {
						np.Via[k] = &r
					}
				}
			}
		case n.Op == "Gemm" || n.Op == "MatMul":
			np.Out, np.Scheme = plan.Single(fast), "LOCAL"
		}
	}
	return p, nil
}

// elementwiseSpatial: a 4-D elementwise operator (Add of a residual, an
// activation) that can be split by rows.
func elementwiseSpatial(g *graph.Graph, n *graph.Node) bool {
	switch n.Op {
	case "Add", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "Mul", "BatchNormalization", "Concat":
		return partition.Splittable(g, n, 2)
	}
	return false
}

func fastest(pr *Problem) int {
	best := 0
	for d := range pr.Cluster.Devices {
		if pr.Cluster.Speed(d, "conv") > pr.Cluster.Speed(best, "conv") {
			best = d
		}
	}
	return best
}

// CoEdge is the CoEdge scheme (Zeng et al., 2020): the input is split by
// height with per-device ratios from speed; each device runs its stripe
// layer after layer, exchanging only the halo rows its neighbours need;
// convolution weights are replicated; fully connected layers run on one
// device after a gather. Where a device's memory cannot hold the replicated
// weights, its ratio drops to zero (it does not participate).
func CoEdge(pr *Problem) (*plan.Plan, error) {
	w := make([]float64, pr.Cluster.N())
	for d := range w {
		w[d] = pr.Cluster.Speed(d, "conv")
	}
	p := coedgeWith(pr, w)
	if _, err := Evaluate(pr, p); err != nil {
		return nil, err
	}
	// Drop devices that cannot hold their share (replicated weights) and
	// re-plan with the others, as CoEdge's memory-aware ratios do.
	for {
		d := Fits(pr, p.Prediction)
		if d < 0 {
			return p, nil
		}
		if w[d] == 0 {
			// d already has no stripe (it overflows with what it must
			// hold anyway, e.g. the input): dropping it again would loop.
			return nil, newMemoryError(pr, d, p.Prediction.Devices[d].PeakMemoryBytes)
		}
		w[d] = 0
		alive := 0
		for _, v := range w {
			if v > 0 {
				alive++
			}
		}
		if alive == 0 {
			return nil, newMemoryError(pr, d, p.Prediction.Devices[d].PeakMemoryBytes)
		}
		p = coedgeWith(pr, w)
		if _, err := Evaluate(pr, p); err != nil {
			return nil, err
		}
	}
}

func coedgeWith(pr *Problem, w []float64) *plan.Plan {
	p := newPlan(pr, "coedge")
	g := pr.Graph
	fast := fastest(pr)
	if w[fast] == 0 {
		for d, v := range w {
			if v > 0 {
				fast = d
				break
			}
		}
	}
	for i, n := range g.Nodes {
		np := &p.Nodes[i]
		switch {
		case n.Op == "Gemm" || n.Op == "MatMul" || n.Op == "Softmax" || !is4D(g, n):
			np.Out, np.Scheme = plan.Single(fast), "LOCAL"
		default:
			if l, ok := heightSplit(pr, n, w); ok {
				np.Out, np.Scheme = l, "SP"
			} else {
				np.Out, np.Scheme = plan.Single(fast), "LOCAL"
			}
		}
	}
	return p
}

func is4D(g *graph.Graph, n *graph.Node) bool {
	return len(n.Outputs) > 0 && len(g.Values[n.Outputs[0]].Shape) == 4
}

// MemoryError reports that no plan of a strategy fits the devices' memory:
// device Device (named Name) has Limit bytes, and the plan that comes
// closest needs Need bytes there.
type MemoryError struct {
	Device int
	Name   string
	Limit  int64
	Need   int64
	// Whole: the whole model on one device (the single strategy).
	Whole bool
}

func newMemoryError(pr *Problem, d int, need int64) *MemoryError {
	return &MemoryError{Device: d, Name: pr.Cluster.Devices[d].Name, Limit: int64(pr.Cluster.Devices[d].Memory), Need: need}
}

func (e *MemoryError) Error() string {
	if e.Whole {
		return fmt.Sprintf("the model does not fit on any single device: it needs at least %.1f MiB (on device %q, limit %.1f MiB)",
			mib(e.Need), e.Name, mib(e.Limit))
	}
	return fmt.Sprintf("device %q cannot hold its part: its limit is %.1f MiB, the best plan needs %.1f MiB there",
		e.Name, mib(e.Limit), mib(e.Need))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
