package partition_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/engine"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/planner"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/zoo"
)

// TestProgramSpecRoundTrip sends every device program through its JSON
// form (as a worker receives it) and checks the rebuilt programs still
// compute the single-device output.
func TestProgramSpecRoundTrip(t *testing.T) {
	for _, m := range []string{"tiny-mobilenet", "tiny-inception", "tiny-alexnet"} {
		g, err := zoo.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
			t.Fatal(err)
		}
		x := zoo.Input(m, 5)
		s, err := engine.New(g, engine.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.Run(x)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, strategy := range []string{"oc", "coedge", "iop"} {
			ps, err := planner.Programs(&planner.Problem{Graph: g, Cluster: cluster.Uniform(3, 4, 0, 12.5e6, 0.2), Params: cost.DefaultParams, ModelName: m}, strategy)
			if err != nil {
				t.Fatal(err)
			}
			for d, prog := range ps.Devices {
				b, err := json.Marshal(prog.Spec())
				if err != nil {
					t.Fatalf("%s/%s: encode device %d: %v", m, strategy, d, err)
				}
				var spec partition.ProgramSpec
				if err := json.Unmarshal(b, &spec); err != nil {
					t.Fatal(err)
				}
				consts := map[string]*tensor.Tensor{}
				for _, c := range spec.Consts {
					consts[c.Name] = prog.Consts[c.Name].Clone()
				}
				if ps.Devices[d], err = spec.Program(consts); err != nil {
					t.Fatalf("%s/%s: decode device %d: %v", m, strategy, d, err)
				}
			}
			got, err := partition.RunInProcess(context.Background(), ps, []*tensor.Tensor{x}, 1)
			if err != nil {
				t.Fatalf("%s/%s: %v", m, strategy, err)
			}
			if err := tensor.AllClose(got[0], want[0], 1e-4, 1e-5); err != nil {
				t.Errorf("%s/%s: %v", m, strategy, err)
			}
		}
	}
}

// TestProgramSpecSpecialFloats: infinite and NaN attributes survive.
func TestProgramSpecSpecialFloats(t *testing.T) {
	n := &graph.Node{Name: "c", Op: "Clip", Inputs: []string{"x"}, Outputs: []string{"y"}, Attrs: map[string]graph.Attr{
		"min": {Kind: graph.AttrFloat, Float: float32(math.Inf(-1))},
		"v":   {Kind: graph.AttrFloats, Floats: []float32{float32(math.NaN()), float32(math.Inf(1))}},
		"t":   {Kind: graph.AttrTensor, Tensor: tensor.FromFloat32(tensor.Shape{1}, []float32{float32(math.Inf(1))})},
	}}
	p := &partition.Program{Steps: []partition.Step{{Kind: partition.Compute, Node: n, Orig: "c"}}, Consts: map[string]*tensor.Tensor{}, Values: map[string]graph.ValueInfo{}}
	b, err := json.Marshal(p.Spec())
	if err != nil {
		t.Fatal(err)
	}
	var spec partition.ProgramSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	q, err := spec.Program(map[string]*tensor.Tensor{})
	if err != nil {
		t.Fatal(err)
	}
	a := q.Steps[0].Node.Attrs
	if !math.IsInf(float64(a["min"].Float), -1) || !math.IsNaN(float64(a["v"].Floats[0])) || !math.IsInf(float64(a["t"].Tensor.F[0]), 1) {
		t.Fatalf("attributes: %+v", a)
	}
}
