// Package planner makes partitioning plans: the baselines (single, oc, hp,
// coedge), the paper's IOP greedy algorithm, and an exact dynamic program
// (optimal). Every plan is evaluated the same way: compiled to per-device
// programs and simulated on the cluster by the cost model.
package planner

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"sort"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/plan"
	"github.com/iop-edge/iop/internal/tensor"
)

// Strategies lists the strategy names in the order reports show them.
var Strategies = []string{"single", "oc", "hp", "coedge", "iop", "optimal"}

// Problem is what a strategy plans for.
type Problem struct {
	// Graph is the optimized, shape-inferred model (passes.Optimize).
	Graph   *graph.Graph
	Cluster *cluster.Spec
	Params  cost.Params
	// ModelName labels the plan.
	ModelName string

	hash string // ModelHash(Graph), computed once
}

// Hash is ModelHash of the problem's graph (computed once).
func (pr *Problem) Hash() string {
	if pr.hash == "" {
		pr.hash = ModelHash(pr.Graph)
	}
	return pr.hash
}

// Make runs the named strategy and returns its plan with the prediction
// filled in.
func Make(pr *Problem, strategy string) (*plan.Plan, error) {
	var p *plan.Plan
	var err error
	switch strategy {
	case "single":
		p, err = Single(pr)
	case "oc":
		p, err = OC(pr)
	case "hp":
		p, err = HP(pr)
	case "coedge":
		p, err = CoEdge(pr)
	case "iop":
		p, err = IOP(pr)
	case "optimal":
		p, err = Optimal(pr)
	default:
		return nil, fmt.Errorf("unknown strategy %q (want one of %v)", strategy, Strategies)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strategy, err)
	}
	if p.Prediction == nil {
		if _, err := Evaluate(pr, p); err != nil {
			return nil, fmt.Errorf("%s: %w", strategy, err)
		}
	}
	return p, nil
}

// newPlan returns an empty plan for pr with every node and input in R.
func newPlan(pr *Problem, strategy string) *plan.Plan {
	g := pr.Graph
	p := &plan.Plan{Format: plan.Format, Version: plan.Version, Strategy: strategy, Cluster: pr.Cluster,
		Model: plan.Model{Name: pr.ModelName, Hash: pr.Hash(), Inputs: map[string]tensor.Shape{}}}
	for _, in := range g.Inputs {
		p.Model.Inputs[in.Name] = in.Shape
		// The input arrives at device 0 (the camera); the plan's first
		// transition distributes it.
		p.Inputs = append(p.Inputs, plan.Single(0))
	}
	for _, n := range g.Nodes {
		p.Nodes = append(p.Nodes, plan.NodePlan{Node: n.Name, Op: n.Op, Scheme: "REPL", Out: plan.Replicated()})
	}
	return p
}

// Programs runs the named strategy and compiles its plan into the devices'
// programs (with their weight shards), ready to run or deploy.
func Programs(pr *Problem, strategy string) (*partition.Programs, error) {
	p, err := Make(pr, strategy)
	if err != nil {
		return nil, err
	}
	return partition.Compile(pr.Graph, p, partition.Options{})
}

// Evaluate compiles p (shapes only) and simulates it; it stores the
// prediction in p and returns the timeline.
func Evaluate(pr *Problem, p *plan.Plan) (*cost.Timeline, error) {
	ps, err := partition.Compile(pr.Graph, p, partition.Options{ShapesOnly: true})
	if err != nil {
		return nil, err
	}
	pred, tl, err := cost.Predict(ps, pr.Cluster, pr.Params)
	if err != nil {
		return nil, err
	}
	p.Prediction = pred
	comp, comm := cost.NodeTimes(tl)
	for i := range p.Nodes {
		p.Nodes[i].ComputeMS = comp[p.Nodes[i].Node]
		p.Nodes[i].CommMS = comm[p.Nodes[i].Node]
	}
	return tl, nil
}

// Fits reports the first device whose predicted peak memory exceeds its
// limit (-1 if all fit).
func Fits(pr *Problem, pred *plan.Prediction) int {
	for d, dp := range pred.Devices {
		lim := int64(pr.Cluster.Devices[d].Memory)
		if lim > 0 && dp.PeakMemoryBytes > lim {
			return d
		}
	}
	return -1
}

// ModelHash identifies a graph: its structure, attributes and weights.
func ModelHash(g *graph.Graph) string {
	h := sha256.New()
	w := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	for _, in := range g.Inputs {
		w(in.Name)
		w(fmt.Sprint(in.Shape))
	}
	for _, n := range g.Nodes {
		w(n.Op)
		w(n.Name)
		for _, s := range n.Inputs {
			w(s)
		}
		for _, s := range n.Outputs {
			w(s)
		}
		keys := make([]string, 0, len(n.Attrs))
		for k := range n.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w(k)
			w(fmt.Sprint(n.Attrs[k]))
		}
	}
	var buf [8]byte
	for _, name := range g.ConstNames() {
		t := g.Constants[name]
		w(name)
		w(fmt.Sprint(t.DType, t.Shape))
		for _, v := range t.F {
			binary.LittleEndian.PutUint32(buf[:4], math.Float32bits(v))
			h.Write(buf[:4])
		}
		for _, v := range t.I {
			binary.LittleEndian.PutUint64(buf[:], uint64(v))
			h.Write(buf[:])
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// speeds returns each device's speed for n's operator class.
func speeds(pr *Problem, n *graph.Node) []float64 {
	class := string(ops.NodeClass(pr.Graph, n))
	s := make([]float64, pr.Cluster.N())
	for d := range s {
		s[d] = pr.Cluster.Speed(d, class)
	}
	return s
}

// Proportional splits size into len(weights) contiguous slices whose sizes
// are multiples of unit and proportional to weights (largest remainder).
// It returns the len(weights)+1 boundaries.
func Proportional(size, unit int, weights []float64) []int {
	n := len(weights)
	if unit <= 0 || size%unit != 0 {
		unit = 1
	}
	units := size / unit
	var total float64
	for _, w := range weights {
		total += w
	}
	counts := make([]int, n)
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, n)
	given := 0
	for i, w := range weights {
		exact := float64(units) * w / total
		counts[i] = int(math.Floor(exact))
		rems[i] = rem{i, exact - float64(counts[i])}
		given += counts[i]
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; given < units; k++ {
		counts[rems[k%n].i]++
		given++
	}
	splits := make([]int, n+1)
	for i, c := range counts {
		splits[i+1] = splits[i] + c*unit
	}
	return splits
}
