package coordinator

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/worker"
)

// Every fault must end in a clear error at the coordinator within a bounded
// time, and the surviving workers must serve the next request.

// expectFailure runs a request that must fail within bound with an error
// containing every string in want.
func expectFailure(t *testing.T, co *Coordinator, x *tensor.Tensor, bound time.Duration, want ...string) {
	t.Helper()
	t0 := time.Now()
	_, err := co.Run(context.Background(), []*tensor.Tensor{x})
	el := time.Since(t0)
	if err == nil {
		t.Fatal("request succeeded despite the fault")
	}
	t.Logf("failed after %v: %v", el.Round(time.Millisecond), err)
	if el > bound {
		t.Errorf("failure took %v, bound %v", el, bound)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func expectSuccess(t *testing.T, co *Coordinator, m *testModel) *Result {
	t.Helper()
	res, err := co.Run(context.Background(), []*tensor.Tensor{m.x})
	if err != nil {
		t.Fatalf("next request: %v", err)
	}
	if err := tensor.AllClose(res.Outputs[0], m.want[0], 1e-4, 1e-5); err != nil {
		t.Fatalf("next request: %v", err)
	}
	return res
}

func deploy(t *testing.T, co *Coordinator, ps *partition.Programs, hash, model string) {
	t.Helper()
	if _, err := co.Deploy(context.Background(), ps, hash, model); err != nil {
		t.Fatal(err)
	}
}

func TestFaultWorkerKilledMidRequest(t *testing.T) {
	l := startWorkers(t, 3, nil)
	m := loadTestModel(t, "tiny-densenet")
	// A slow link makes the request last about a second.
	co := newCoordinator(l, Options{Shaping: worker.Shaping{Rate: 1e6}, CancelGrace: 2 * time.Second})
	defer co.Close()
	deploy(t, co, compileFor(t, m, "hp", 3), "killed", m.name)
	expectSuccess(t, co, m)
	go func() {
		time.Sleep(300 * time.Millisecond)
		l.Kill(1)
	}()
	expectFailure(t, co, m.x, 10*time.Second, "dev1")
	// The survivors serve the next request once device 1 is back (it is
	// deployed again; its peers reconnect to it).
	if err := l.Restart(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	res := expectSuccess(t, co, m)
	if fmt.Sprint(res.Redeployed) != "[1]" {
		t.Errorf("redeployed %v, want [1]", res.Redeployed)
	}
}

func TestFaultPeerNeverConnects(t *testing.T) {
	l := startWorkers(t, 3, [][]string{nil, nil, {"--fault", "no-mesh"}})
	m := loadTestModel(t, "tiny-resnet")
	co := newCoordinator(l, Options{MeshTimeout: 2 * time.Second, CancelGrace: 2 * time.Second})
	defer co.Close()
	deploy(t, co, compileFor(t, m, "oc", 3), "nomesh", m.name)
	expectFailure(t, co, m.x, 8*time.Second, "peer device dev2", "did not connect")
	if err := l.Restart(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	expectSuccess(t, co, m)
}

func TestFaultCorruptFrame(t *testing.T) {
	l := startWorkers(t, 2, [][]string{nil, {"--fault", "corrupt-frame"}})
	m := loadTestModel(t, "tiny-vgg")
	co := newCoordinator(l, Options{CancelGrace: 2 * time.Second})
	defer co.Close()
	deploy(t, co, compileFor(t, m, "oc", 2), "corrupt", m.name)
	expectFailure(t, co, m.x, 8*time.Second, "CRC32C mismatch", "dev1")
	// The fault is injected once: the peers reconnect and the next request
	// succeeds.
	expectSuccess(t, co, m)
}

func TestFaultOversizedFrame(t *testing.T) {
	l := startWorkers(t, 2, [][]string{nil, {"--fault", "oversize-frame"}})
	m := loadTestModel(t, "tiny-vgg")
	co := newCoordinator(l, Options{CancelGrace: 2 * time.Second})
	defer co.Close()
	deploy(t, co, compileFor(t, m, "oc", 2), "oversize", m.name)
	expectFailure(t, co, m.x, 8*time.Second, "exceeds the", "limit")
	expectSuccess(t, co, m)
}

func TestFaultShardBeyondMemoryLimit(t *testing.T) {
	big, small := loadTestModel(t, "tiny-alexnet"), loadTestModel(t, "tiny-resnet")
	psBig, psSmall := compileFor(t, big, "oc", 2), compileFor(t, small, "oc", 2)
	need := func(ps *partition.Programs) int64 {
		p := ps.Devices[1]
		return p.WeightBytes() + cost.PeakActivationBytes(p)
	}
	nb, ns := need(psBig), need(psSmall)
	if nb <= ns {
		t.Fatalf("test models: %d <= %d", nb, ns)
	}
	limit := ns + (nb-ns)/2
	l := startWorkers(t, 2, [][]string{nil, {"--memory-limit", fmt.Sprint(limit)}})
	co := newCoordinator(l, Options{})
	defer co.Close()
	t0 := time.Now()
	_, err := co.Deploy(context.Background(), psBig, "big", big.name)
	if err == nil {
		t.Fatal("deploy beyond the memory limit succeeded")
	}
	t.Logf("refused after %v: %v", time.Since(t0).Round(time.Millisecond), err)
	for _, w := range []string{"dev1", "memory limit of " + humanBytes(limit), "shard of " + humanBytes(nb)} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	deploy(t, co, psSmall, "small", small.name)
	expectSuccess(t, co, small)
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// TestFaultPlanForAnotherModel: `iop run MODEL --plan FILE` with a plan
// made for another model is refused before anything runs; the same plan
// with its own model runs.
func TestFaultPlanForAnotherModel(t *testing.T) {
	planPath := filepath.Join(t.TempDir(), "vgg.json")
	if _, stderr, err := runCLI(t, "plan", "tiny-vgg", "--devices", "2", "--strategy", "iop", "-o", planPath); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t0 := time.Now()
	_, stderr, err := runCLI(t, "run", "tiny-resnet", "--plan", planPath, "--local", "2", "--emulation", "loopback")
	if err == nil {
		t.Fatal("a plan for another model ran")
	}
	t.Logf("refused after %v: %s", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(stderr))
	if !strings.Contains(stderr, `plan was made for model "tiny-vgg"`) {
		t.Errorf("unclear error: %s", stderr)
	}
	out, stderr, err := runCLI(t, "run", planPath, "--local", "2", "--emulation", "loopback")
	if err != nil {
		t.Fatalf("running the plan with its own model: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "latency") {
		t.Errorf("output: %s", out)
	}
}
