package planner

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/plan"
)

func TestValidateRejectsBadPlans(t *testing.T) {
	g, _ := optimized(t, "tiny-vgg")
	pr := &Problem{Graph: g, Cluster: cluster.Uniform(3, 4, 0, 12.5e6, 0.2), Params: cost.DefaultParams, ModelName: "tiny-vgg"}
	p, err := Make(pr, "oc")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.json")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := plan.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(loaded, pr); err != nil {
		t.Fatalf("valid plan rejected: %v", err)
	}

	other, _ := optimized(t, "tiny-resnet")
	if err := Validate(loaded, &Problem{Graph: other, Cluster: pr.Cluster, ModelName: "tiny-resnet"}); err == nil || !strings.Contains(err.Error(), "was made for model") {
		t.Errorf("plan for another model: %v", err)
	}
	bad := clonePlan(loaded)
	for i := range bad.Nodes {
		if bad.Nodes[i].Out.Kind == plan.C {
			s := append([]int(nil), bad.Nodes[i].Out.Splits...)
			s[len(s)-1]--
			bad.Nodes[i].Out.Splits = s
			break
		}
	}
	if err := Validate(bad, pr); err == nil || !strings.Contains(err.Error(), "does not cover") {
		t.Errorf("uncovered slices: %v", err)
	}
	bad = clonePlan(loaded)
	bad.Nodes[0].Out = plan.Single(7)
	if err := Validate(bad, pr); err == nil || !strings.Contains(err.Error(), "device 7") {
		t.Errorf("unknown device: %v", err)
	}
}
