package main

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// TestInferProfile: `iop infer --profile --json` times every computed node
// of the model, in execution order, and gives convolutions a rate.
func TestInferProfile(t *testing.T) {
	bin := buildIop(t, t.TempDir())
	out, err := exec.Command(bin, "infer", "tiny-resnet", "--profile", "--bench", "3", "--json").Output()
	if err != nil {
		t.Fatalf("iop infer --profile: %v", err)
	}
	var res struct {
		Nodes []struct {
			Name   string  `json:"name"`
			Op     string  `json:"op"`
			MS     float64 `json:"ms"`
			GFLOPS float64 `json:"gflops_per_s"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	convs := 0
	for _, n := range res.Nodes {
		if n.Name == "" || n.Op == "" || !(n.MS >= 0) {
			t.Errorf("node %+v", n)
		}
		if n.Op == "Conv" {
			convs++
			if !(n.GFLOPS > 0) {
				t.Errorf("conv %s: rate %g", n.Name, n.GFLOPS)
			}
		}
	}
	if convs == 0 {
		t.Fatalf("no Conv among %d profiled nodes", len(res.Nodes))
	}
}
