package planner

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/engine"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/zoo"
)

// optimized builds a zoo model and optimizes it the way the CLI does.
func optimized(t testing.TB, name string) (*graph.Graph, *tensor.Tensor) {
	t.Helper()
	g, err := zoo.Build(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	return g, zoo.Input(name, 7)
}

func reference(t testing.TB, g *graph.Graph, x *tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	s, err := engine.New(g, engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(x)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hetero(n int, bw float64) *cluster.Spec {
	s := cluster.Uniform(n, 4, 0, cluster.Bandwidth(bw), 0.2)
	for d := range s.Devices {
		s.Devices[d].GFLOPS = float64(2 + 3*d%5)
	}
	return s
}

// deviceCounts is n = 1..4 for every model plus 5..8 for two of them;
// IOP_LONG_TESTS=1 runs n = 1..8 everywhere.
func deviceCounts(model string) []int {
	if os.Getenv("IOP_LONG_TESTS") == "1" {
		return []int{1, 2, 3, 4, 5, 6, 7, 8}
	}
	switch model {
	case "tiny-resnet":
		return []int{1, 2, 3, 4, 5, 7}
	case "tiny-inception":
		return []int{1, 2, 3, 4, 6, 8}
	}
	return []int{1, 2, 3, 4}
}

func TestStrategiesMatchSingleDevice(t *testing.T) {
	models := []string{"tiny-vgg", "tiny-alexnet", "tiny-resnet", "tiny-mobilenet", "tiny-squeezenet", "tiny-inception", "tiny-densenet"}
	for _, m := range models {
		g, x := optimized(t, m)
		want := reference(t, g, x)
		for _, strategy := range Strategies {
			for _, n := range deviceCounts(m) {
				for _, het := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/n%d/het=%v", m, strategy, n, het)
					spec := cluster.Uniform(n, 4, 0, 12.5e6, 0.2)
					if het {
						spec = hetero(n, 12.5e6)
					}
					pr := &Problem{Graph: g, Cluster: spec, Params: cost.DefaultParams, ModelName: m}
					p, err := Make(pr, strategy)
					if err != nil {
						t.Errorf("%s: plan: %v", name, err)
						continue
					}
					ps, err := partition.Compile(g, p, partition.Options{})
					if err != nil {
						t.Errorf("%s: compile: %v", name, err)
						continue
					}
					got, err := partition.RunInProcess(context.Background(), ps, []*tensor.Tensor{x}, 1)
					if err != nil {
						t.Errorf("%s: run: %v", name, err)
						continue
					}
					for i := range want {
						if err := tensor.AllClose(got[i], want[i], 1e-4, 1e-5); err != nil {
							t.Errorf("%s: output %d: %v", name, i, err)
						}
					}
				}
			}
		}
	}
}
