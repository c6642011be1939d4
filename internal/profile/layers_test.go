package profile

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/zoo"
)

// TestMeasureLayers times the distinct layers of ResNet-18 (after the
// passes the planner runs) through a JSON round trip, as a device
// receives them: every layer is timed, a 3×3 convolution over 64 channels
// at 56×56 takes longer than the final 512→1000 Gemm, and a byte budget
// too small for any layer times none.
func TestMeasureLayers(t *testing.T) {
	g, err := zoo.Build("resnet18")
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	specs, index := ModelLayers(g)
	if len(specs) == 0 || len(specs) >= len(index) {
		t.Fatalf("%d distinct layers for %d compute nodes: want fewer layers than nodes (repeated blocks)", len(specs), len(index))
	}
	b, err := json.Marshal(LayersRequest{Layers: specs, Threads: 1, BudgetMS: 200})
	if err != nil {
		t.Fatal(err)
	}
	var req LayersRequest
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	res, err := MeasureLayers(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, ms := range res.MS {
		if !(ms > 0) {
			t.Errorf("layer %d (%s %s) not timed: %v ms", i, specs[i].Node.Op, specs[i].Node.Name, ms)
		}
	}
	ci, ok1 := index["layer1.0.conv1"]
	fi, ok2 := index["fc"]
	if !ok1 || !ok2 {
		t.Fatalf("no layer1.0.conv1 or fc node in %v", index)
	}
	conv, fc := res.MS[ci], res.MS[fi]
	if !(conv > fc) {
		t.Errorf("3×3 conv 64@56 %.3f ms, fc %.3f ms: want the conv slower", conv, fc)
	}
	if res.Share <= 0 {
		t.Errorf("share %v", res.Share)
	}
	req.MaxBytes = 1
	res, err = MeasureLayers(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, ms := range res.MS {
		if ms != 0 {
			t.Errorf("layer %d timed (%v ms) beyond a 1-byte budget", i, ms)
		}
	}
}

// TestClusterModelLayers times a model's layers on two agents over the
// profile protocol into the spec's layer_ms, which survives a YAML round
// trip, and keeps the times of another model already in the spec.
func TestClusterModelLayers(t *testing.T) {
	s := agents(t, 2)
	s.LayerMS = map[string]map[string]map[string]float64{"other": {"dev0": {"x": 1}}}
	g, err := zoo.Build("mobilenetv2")
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _, err := Cluster(ctx, s, ClusterOptions{SkipOps: true, SkipLinks: true, Model: g, ModelKey: "mobilenetv2",
		Layers: LayersRequest{Threads: 1, BudgetMS: 100}})
	if err != nil {
		t.Fatal(err)
	}
	_, index := ModelLayers(g)
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := out.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := cluster.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range s.Devices {
		got := back.LayerMS["mobilenetv2"][d.Name]
		if len(got) != len(index) {
			t.Errorf("%s: %d nodes timed, want %d", d.Name, len(got), len(index))
		}
		for node, ms := range got {
			if _, ok := index[node]; !ok || !(ms > 0) {
				t.Errorf("%s: node %s: %v ms", d.Name, node, ms)
			}
		}
	}
	if back.LayerMS["other"]["dev0"]["x"] != 1 {
		t.Error("the other model's layer times were lost")
	}
}
