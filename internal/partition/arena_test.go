package partition_test

import (
	"context"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/engine"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/planner"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/zoo"
)

// TestArenaAcrossRequests runs several requests with different inputs on
// the same runners (whose arenas keep the previous request's data) and
// checks every answer against single-device inference, and that the arena
// is smaller than giving every tensor its own buffer.
func TestArenaAcrossRequests(t *testing.T) {
	for _, m := range []string{"tiny-resnet", "tiny-inception", "tiny-mobilenet"} {
		g, err := zoo.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
			t.Fatal(err)
		}
		s, err := engine.New(g, engine.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		var xs, want []*tensor.Tensor
		for seed := uint64(1); seed <= 3; seed++ {
			x := zoo.Input(m, seed)
			y, err := s.Run(x)
			if err != nil {
				t.Fatal(err)
			}
			xs, want = append(xs, x), append(want, y[0])
		}
		s.Close()
		for _, strategy := range []string{"single", "oc", "coedge", "iop", "optimal"} {
			ps, err := planner.Programs(&planner.Problem{Graph: g, Cluster: cluster.Uniform(3, 4, 0, 12.5e6, 0.2), Params: cost.DefaultParams, ModelName: m}, strategy)
			if err != nil {
				t.Fatal(err)
			}
			ip, err := partition.NewInProcess(ps)
			if err != nil {
				t.Fatal(err)
			}
			for r := 0; r < 2*len(xs); r++ {
				got, err := ip.Run(context.Background(), []*tensor.Tensor{xs[r%len(xs)]}, 1)
				if err != nil {
					t.Fatalf("%s/%s request %d: %v", m, strategy, r, err)
				}
				if err := tensor.AllClose(got[0], want[r%len(xs)], 1e-4, 1e-5); err != nil {
					t.Errorf("%s/%s request %d: %v", m, strategy, r, err)
				}
			}
			for d, prog := range ps.Devices {
				a := partition.PlanArena(prog)
				var each int64
				for name := range a.Buffer {
					each += int64(prog.Values[name].Shape.Numel()) * 4
				}
				if a.Bytes() > each {
					t.Errorf("%s/%s device %d: arena %d bytes, more than one buffer per tensor (%d)", m, strategy, d, a.Bytes(), each)
				}
				if len(a.Buffer) > 4 && a.Bytes() == each {
					t.Errorf("%s/%s device %d: arena of %d tensors reuses no buffer", m, strategy, d, len(a.Buffer))
				}
			}
		}
	}
}
