package planner

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/tensor"
)

// randomChain is a small chain: convolutions (with fused activations),
// maybe a pool, a flatten and a Gemm — ops operators after optimization.
func randomChain(t testing.TB, seed uint64, ops int) *graph.Graph {
	rng := rand.New(rand.NewPCG(seed, 99))
	r := &randGraph{rng: rng, g: graph.New(fmt.Sprintf("chain%d", seed), 17), shapes: map[string]tensor.Shape{}}
	in := tensor.Shape{1, 1 + rng.IntN(3), 5 + 2*rng.IntN(4), 5 + 2*rng.IntN(4)}
	r.g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Shape: in}}
	r.shapes["x"] = in
	x := "x"
	for i := 0; i < ops-2; i++ {
		if i > 0 && rng.IntN(3) == 0 {
			if y := r.pool(x); y != x {
				x = y
				continue
			}
		}
		x = r.conv(x, 2+rng.IntN(7), 3, 1+rng.IntN(2), 1, 1, true)
		if rng.IntN(2) == 0 {
			x = r.unary("Relu", x) // fused into the conv
		}
	}
	s := r.shapes[x]
	f := r.node("Flatten", []string{x}, tensor.Shape{1, s.Numel()})
	f.SetInt("axis", 1)
	k := s.Numel()
	out := 2 + rng.IntN(6)
	gm := r.node("Gemm", []string{f.Name, r.weights(tensor.Shape{out, k}, 1/float64(k)), r.weights(tensor.Shape{out}, 0.1)}, tensor.Shape{1, out})
	gm.SetInt("transB", 1)
	r.g.Outputs = []graph.ValueInfo{{Name: gm.Name, DType: tensor.Float32, Shape: tensor.Shape{1, out}}}
	if err := passes.Optimize(r.g, nil, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	return r.g
}

// TestDPExhaustive checks the DP against exhaustive search on small chains
// (n = 2 with 5 operators, n = 3 with 4), over its whole state space: every
// layout of every operator's output (R, S(d), C, H), every IC input layout,
// the input on every device.
//
// What is exact: the DP's optimum equals the minimum, over all those
// assignments, of the DP's own cost (operators separated by barriers, each
// timed by the cost model's event rules on exactly the transfers and
// computes the compiler emits). That is asserted to 1e-9.
//
// What is not: the simulator (cost.Predict) lets devices run ahead into the
// next operator, so its latency for a plan is at most, and usually a little
// below, the DP's cost. The plan Optimal returns (best of the barrier DP,
// the clock-carrying DP and the baselines, all judged by the simulator) is
// asserted to be within 5% of the best simulated latency of any assignment,
// and it usually matches it; the worst ratio seen is logged.
func TestDPExhaustive(t *testing.T) {
	seeds := 4
	if testing.Short() {
		seeds = 2
	}
	worst := 1.0
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		for _, n := range []int{2, 3} {
			rng := rand.New(rand.NewPCG(seed, uint64(n)))
			ops := 7 - n
			g := randomChain(t, seed*10+uint64(n), ops)
			if len(g.Nodes) > 5 {
				t.Fatalf("chain has %d operators", len(g.Nodes))
			}
			spec := cluster.Uniform(n, 4, 0, cluster.Bandwidth((10+rng.Float64()*990)*1e6/8), rng.Float64()*0.3)
			for d := range spec.Devices {
				spec.Devices[d].GFLOPS = 0.001 + rng.Float64()*0.01 // tiny models on slow devices: compute matters
			}
			if rng.IntN(3) == 0 {
				spec.Topology = cluster.Shared
			}
			pr := &Problem{Graph: g, Cluster: spec, Params: cost.DefaultParams, ModelName: g.Name}
			name := fmt.Sprintf("seed %d n=%d (%d ops, %s, %s)", seed, n, len(g.Nodes), spec.Link.Bandwidth, spec.Topology)
			// One ratio vector keeps the enumeration small.
			cfg := dpConfig{keep: 1, beam: 1 << 30, work: -1, noPrune: true, ratios: [][]float64{speeds(pr, g.Nodes[0])}}
			dp, err := newDP(pr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := dp.run()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if dp.truncated {
				t.Fatalf("%s: beam truncated", name)
			}
			best := math.Inf(1)
			simBest := math.Inf(1)
			count := 0
			err = dp.enumerate(func(choices []int, input int, c float64) {
				count++
				best = math.Min(best, c)
				p := dp.planOfChoices(choices, input)
				if _, err := Evaluate(pr, p); err != nil {
					t.Errorf("%s: assignment %v does not compile: %v", name, choices, err)
					return
				}
				simBest = math.Min(simBest, p.Prediction.LatencyMS)
			})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(res[0].cost-best) > 1e-9*best {
				t.Errorf("%s: DP cost %.9g s, exhaustive minimum over %d assignments %.9g s", name, res[0].cost, count, best)
			}
			opt, err := Optimal(pr)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ratio := opt.Prediction.LatencyMS / simBest
			worst = math.Max(worst, ratio)
			if ratio > 1.05 {
				t.Errorf("%s: optimal predicts %.4f ms, the best of %d assignments %.4f ms", name, opt.Prediction.LatencyMS, count, simBest)
			}
			var schemes []string
			for _, np := range res[0].plan.Nodes {
				schemes = append(schemes, np.Out.String())
			}
			t.Logf("%s: %d assignments; DP %.4f ms (exact) %v; simulated: optimal %.4f ms, exhaustive best %.4f ms", name, count, res[0].cost*1e3, schemes, opt.Prediction.LatencyMS, simBest)
		}
	}
	t.Logf("worst optimal/exhaustive ratio (simulator): %.4f", worst)
}
