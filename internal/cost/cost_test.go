package cost_test

import (
	"math"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/planner"
	"github.com/iop-edge/iop/internal/zoo"
)

// TestCoordinatorIO: the prediction includes sending the inputs from the
// coordinator and returning the outputs over the coordinator's link.
func TestCoordinatorIO(t *testing.T) {
	g, err := zoo.Build("tiny-resnet")
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	in, out := g.Inputs[0], g.Outputs[0]
	inBytes := float64(in.Shape.Numel() * 4)
	outBytes := float64(out.Shape.Numel() * 4)
	for _, strategy := range []string{"single", "oc", "coedge"} {
		latency := func(coord cluster.Link) float64 {
			spec := cluster.Uniform(2, 4, 0, 12.5e6, 0.2)
			spec.Coordinator = &coord
			pr := &planner.Problem{Graph: g, Cluster: spec, Params: cost.DefaultParams, ModelName: "tiny-resnet"}
			p, err := planner.Make(pr, strategy)
			if err != nil {
				t.Fatal(err)
			}
			ps, err := partition.Compile(g, p, partition.Options{})
			if err != nil {
				t.Fatal(err)
			}
			pred, _, err := cost.Predict(ps, spec, cost.DefaultParams)
			if err != nil {
				t.Fatal(err)
			}
			return pred.LatencyMS
		}
		fast := latency(cluster.Link{Bandwidth: 1e15})
		slow := latency(cluster.Link{Bandwidth: 1e6, LatencyMS: 1})
		// Single: the whole input to one device and its output back, in
		// series with the compute. Split strategies send at least the
		// input once in total over the shared link.
		want := (inBytes+outBytes)/1e6*1e3 + 2
		got := slow - fast
		if strategy == "single" && math.Abs(got-want) > 0.01*want {
			t.Errorf("%s: coordinator I/O adds %.3f ms, want %.3f", strategy, got, want)
		}
		if got < inBytes/1e6*1e3 {
			t.Errorf("%s: coordinator I/O adds %.3f ms, less than the input alone (%.3f ms)", strategy, got, inBytes/1e6*1e3)
		}
	}
}

func TestSharedArrivals(t *testing.T) {
	// 100 and 300 bytes at 100 B/s: both at 50 B/s until the first is
	// done at 2 s, then the other's remaining 200 bytes alone in 2 s.
	got := cost.SharedArrivals([]int64{300, 0, 100}, 100)
	want := []float64{4, 0, 2}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("SharedArrivals = %v, want %v", got, want)
		}
	}
}
