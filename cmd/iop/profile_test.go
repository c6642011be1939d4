package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
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

// TestRunLocalProfileLoopback: `iop run --local N --profile` on loopback
// emulation measures the links at the emulated rate (the probes are shaped
// like the workers' connections), times the model's own layers and plans
// with both.
func TestRunLocalProfileLoopback(t *testing.T) {
	dir := t.TempDir()
	bin := buildIop(t, dir)
	cache := filepath.Join(dir, "spec.yaml")
	reqs := filepath.Join(dir, "requests.jsonl")
	out, err := exec.Command(bin, "run", "tiny-resnet", "--local", "2", "--emulation", "loopback", "--bandwidth", "50Mbps",
		"--profile", "--profile-budget", "500ms", "--profile-cache", cache, "--json", "--nodes=false",
		"--repeat", "3", "--trace-requests", reqs).Output()
	if err != nil {
		t.Fatalf("iop run --profile: %v", err)
	}
	var res struct {
		Profiled        bool   `json:"profiled"`
		PlannedLink     string `json:"planned_link"`
		CalibratedNodes int    `json:"calibrated_nodes"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	spec, err := cluster.Load(cache)
	if err != nil {
		t.Fatal(err)
	}
	if bw := float64(spec.Link.Bandwidth) * 8 / 1e6; bw < 35 || bw > 60 {
		t.Errorf("profiled link %.1f Mbit/s (%s), want about the emulated 50", bw, res.PlannedLink)
	}
	if !res.Profiled || res.CalibratedNodes == 0 || len(spec.LayerMS["tiny-resnet"]) != 2 {
		t.Errorf("profiled %v, %d calibrated nodes, layer times for %d devices: want the model's layers timed on both",
			res.Profiled, res.CalibratedNodes, len(spec.LayerMS["tiny-resnet"]))
	}
	// --trace-requests: one line per timed request, each with its latency
	// and both devices' steps.
	b, err := os.ReadFile(reqs)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("--trace-requests wrote %d lines for 3 requests", len(lines))
	}
	for i, l := range lines {
		var r struct {
			LatencyNS int64 `json:"latency_ns"`
			Devices   []struct {
				Events []json.RawMessage `json:"events"`
			} `json:"devices"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if r.LatencyNS <= 0 || len(r.Devices) != 2 || len(r.Devices[0].Events) == 0 || len(r.Devices[1].Events) == 0 {
			t.Errorf("request %d: latency %d ns, %d devices, want both with steps", i, r.LatencyNS, len(r.Devices))
		}
	}
}
