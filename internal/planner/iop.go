package planner

import (
	"sort"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/plan"
)

// IOP is the paper's algorithm: start from the OC plan and turn adjacent
// layer pairs into (OC, IC) pairs — the second layer reads the first one's
// channel slice as its input-channel slice and produces partial sums that
// are added once after the pair — largest predicted benefit first, keeping
// each conversion only while it lowers the predicted latency.
func IOP(pr *Problem) (*plan.Plan, error) {
	p, err := OC(pr)
	if err != nil {
		return nil, err
	}
	p.Strategy = "iop"
	if _, err := Evaluate(pr, p); err != nil {
		return nil, err
	}
	base := p.Prediction.LatencyMS
	type cand struct {
		node    int
		in      plan.Layout
		benefit float64
	}
	var cands []cand
	for _, c := range icCandidates(pr, p) {
		q := clonePlan(p)
		applyIC(q, c.node, c.in)
		if _, err := Evaluate(pr, q); err != nil {
			continue
		}
		if b := base - q.Prediction.LatencyMS; b > 0 {
			cands = append(cands, cand{c.node, c.in, b})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].benefit > cands[j].benefit })
	cur := base
	for _, c := range cands {
		if !stillCandidate(pr, p, c.node) {
			continue
		}
		q := clonePlan(p)
		applyIC(q, c.node, c.in)
		if _, err := Evaluate(pr, q); err != nil {
			continue
		}
		if q.Prediction.LatencyMS < cur {
			p, cur = q, q.Prediction.LatencyMS
		}
	}
	return p, nil
}

type icCand struct {
	node int
	in   plan.Layout
}

// icCandidates lists the layers that can become the IC half of a pair: an
// ungrouped Conv, a Gemm (transA=0) or a 2-D MatMul whose input arrives in
// a C layout produced by an OC layer (through channel-wise operators).
func icCandidates(pr *Problem, p *plan.Plan) []icCand {
	var out []icCand
	for i := range pr.Graph.Nodes {
		if l, ok := icInput(pr, p, i); ok {
			out = append(out, icCand{i, l})
		}
	}
	return out
}

func stillCandidate(pr *Problem, p *plan.Plan, i int) bool {
	_, ok := icInput(pr, p, i)
	return ok
}

// icInput returns the C layout node i's input arrives in when node i can be
// the IC half of a pair in plan p.
func icInput(pr *Problem, p *plan.Plan, i int) (plan.Layout, bool) {
	g := pr.Graph
	n := g.Nodes[i]
	if p.Nodes[i].Scheme != "OC" && p.Nodes[i].Scheme != "REPL" {
		return plan.Layout{}, false
	}
	// A layer already leading a pair stays OC (pairs do not chain).
	if feedsIC(g, p, n) {
		return plan.Layout{}, false
	}
	switch n.Op {
	case "Conv":
		if n.Int("group", 1) != 1 {
			return plan.Layout{}, false
		}
	case "Gemm":
		if n.Int("transA", 0) != 0 {
			return plan.Layout{}, false
		}
	case "MatMul":
		if len(g.Values[n.Inputs[0]].Shape) != 2 {
			return plan.Layout{}, false
		}
	default:
		return plan.Layout{}, false
	}
	if g.IsConst(n.Inputs[0]) || !g.IsConst(n.Inputs[1]) {
		return plan.Layout{}, false
	}
	// The first half of the pair must be an OC layer reached through
	// channel-preserving operators in the same C layout.
	prod := g.Producers()
	src, ok := prod[n.Inputs[0]]
	if !ok {
		return plan.Layout{}, false
	}
	l := p.Nodes[indexOf(g, src)].Out
	if l.Kind != plan.C {
		return plan.Layout{}, false
	}
	for cur := src; ; {
		j := indexOf(g, cur)
		if p.Nodes[j].Scheme == "OC" {
			break
		}
		if p.Nodes[j].Scheme != "FOLLOW" || len(cur.Inputs) == 0 {
			return plan.Layout{}, false
		}
		nxt, ok := prod[cur.Inputs[0]]
		if !ok {
			return plan.Layout{}, false
		}
		cur = nxt
	}
	return l, true
}

// feedsIC reports whether n's output reaches an IC layer through
// channel-preserving (FOLLOW) operators.
func feedsIC(g *graph.Graph, p *plan.Plan, n *graph.Node) bool {
	cons := g.Consumers()
	stack := []*graph.Node{n}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, o := range cur.Outputs {
			for _, c := range cons[o] {
				switch p.Nodes[indexOf(g, c)].Scheme {
				case "IC":
					return true
				case "FOLLOW":
					stack = append(stack, c)
				}
			}
		}
	}
	return false
}

func applyIC(p *plan.Plan, i int, in plan.Layout) {
	l := in
	p.Nodes[i].Scheme = "IC"
	p.Nodes[i].In = &l
	p.Nodes[i].Out = plan.Partial()
	p.Prediction = nil
}

func clonePlan(p *plan.Plan) *plan.Plan {
	q := *p
	q.Nodes = append([]plan.NodePlan(nil), p.Nodes...)
	q.Inputs = append([]plan.Layout(nil), p.Inputs...)
	q.Prediction = nil
	return &q
}
