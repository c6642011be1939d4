package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/cputime"
	"github.com/iop-edge/iop/internal/engine"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/planner"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/testbed"
	"github.com/iop-edge/iop/internal/transport"
	"github.com/iop-edge/iop/internal/worker"
	"github.com/iop-edge/iop/internal/zoo"
)

// The end-to-end tests run real `iop worker` processes on loopback: the
// binary is built once here.
var iopBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "iop-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	iopBin = filepath.Join(dir, "iop")
	out, err := exec.Command("go", "build", "-o", iopBin, "github.com/iop-edge/iop/cmd/iop").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build iop: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// full reports whether the whole matrix runs (IOP_E2E_FULL=1).
func full() bool { return os.Getenv("IOP_E2E_FULL") == "1" }

// startWorkers starts n worker processes on loopback; they are stopped
// (SIGTERM, which must end them cleanly) when the test ends.
func startWorkers(t testing.TB, n int, extra [][]string) *Local {
	t.Helper()
	return startWorkersOn(t, LocalConfig{N: n, Mode: "loopback", ExtraArgs: extra})
}

// startWorkersOn starts the workers cfg describes (Exe and Stderr are
// filled in); they are stopped when the test ends.
func startWorkersOn(t testing.TB, cfg LocalConfig) *Local {
	t.Helper()
	var logs bytes.Buffer
	var mu sync.Mutex
	cfg.Exe = iopBin
	cfg.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	l, err := StartLocal(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Errorf("stopping workers: %v", err)
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("worker logs:\n%s", logs.String())
			mu.Unlock()
		}
	})
	return l
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// model loads a zoo model (or an .onnx file) optimized as the CLI does, its
// input, and the single-device reference output.
type testModel struct {
	name string
	g    *graph.Graph
	x    *tensor.Tensor
	want []*tensor.Tensor
}

var (
	modelMu    sync.Mutex
	modelCache = map[string]*testModel{}
)

func loadTestModel(t testing.TB, name string) *testModel {
	t.Helper()
	modelMu.Lock()
	defer modelMu.Unlock()
	if m, ok := modelCache[name]; ok {
		return m
	}
	var g *graph.Graph
	var err error
	zooName := name
	if strings.HasSuffix(name, ".onnx") {
		g, err = onnx.LoadFile(name)
		zooName = strings.TrimSuffix(filepath.Base(name), ".onnx")
	} else {
		g, err = zoo.Build(name)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	x := zoo.Input(zooName, 3)
	s, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Run(x)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := &testModel{name: name, g: g, x: x, want: want}
	modelCache[name] = m
	return m
}

// deployRun plans m with strategy for the workers of l, deploys and runs
// it and checks the outputs against single-device inference.
func deployRun(t testing.TB, co *Coordinator, m *testModel, strategy string, n int) *Result {
	t.Helper()
	pr := &planner.Problem{Graph: m.g, Cluster: cluster.Uniform(n, 4, 0, 12.5e6, 0.2), Params: cost.DefaultParams, ModelName: m.name}
	ps, err := planner.Programs(pr, strategy)
	if err != nil {
		t.Fatalf("%s/%s/n%d: plan and compile: %v", m.name, strategy, n, err)
	}
	ctx := context.Background()
	if _, err := co.Deploy(ctx, ps, fmt.Sprintf("%s/%s/%d", m.name, strategy, n), m.name); err != nil {
		t.Fatalf("%s/%s/n%d: deploy: %v", m.name, strategy, n, err)
	}
	res, err := co.Run(ctx, []*tensor.Tensor{m.x})
	if err != nil {
		t.Fatalf("%s/%s/n%d: run: %v", m.name, strategy, n, err)
	}
	for i := range m.want {
		if err := tensor.AllClose(res.Outputs[i], m.want[i], 1e-4, 1e-5); err != nil {
			t.Errorf("%s/%s/n%d: output %d: %v", m.name, strategy, n, i, err)
		}
	}
	// The workers share this machine's clock: each program starts within
	// the request, and its last step ends before the request does.
	lat := float64(res.Latency) / 1e6
	var cpu, threadCPU time.Duration
	for d, dr := range res.Devices {
		for _, e := range dr.Events {
			cpu += e.CPU
			if e.ThreadCPU != 0 && e.Kind != "compute" {
				t.Errorf("%s/%s/n%d: device %d: thread CPU on a %s step", m.name, strategy, n, d, e.Kind)
			}
			threadCPU += e.ThreadCPU
		}
		end := dr.StartMS
		if len(dr.Events) > 0 {
			end += float64(dr.Events[len(dr.Events)-1].End) / 1e6
		}
		if dr.StartMS < 0 || end > lat {
			t.Errorf("%s/%s/n%d: device %d runs %.3f–%.3f ms, outside the request's %.3f ms", m.name, strategy, n, d, dr.StartMS, end, lat)
		}
	}
	if cputime.Available() && cpu <= 0 {
		t.Errorf("%s/%s/n%d: the traces record no CPU time", m.name, strategy, n)
	}
	if runtime.GOOS == "linux" && co.opt.Threads == 1 && threadCPU <= 0 {
		t.Errorf("%s/%s/n%d: the traces record no thread CPU time for the compute steps", m.name, strategy, n)
	}
	return res
}

// newCoordinator connects to l's workers (from inside their namespaces on
// the testbed).
func newCoordinator(l *Local, opt Options) *Coordinator {
	if l.Dial != nil {
		opt.Dial = l.Dial
	}
	return New(l.Names, l.Addrs, opt)
}

// TestWorkersMatchSingleDevice runs every strategy on 2, 3 and 4 worker
// processes for the tiny zoo models and compares with single-device
// inference.
func TestWorkersMatchSingleDevice(t *testing.T) {
	models := []string{"tiny-vgg", "tiny-alexnet", "tiny-resnet", "tiny-mobilenet", "tiny-squeezenet", "tiny-inception", "tiny-densenet"}
	for _, n := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			l := startWorkers(t, n, nil)
			co := newCoordinator(l, Options{Threads: 1, RequestTimeout: time.Minute})
			defer co.Close()
			for _, name := range models {
				m := loadTestModel(t, name)
				for _, s := range planner.Strategies {
					deployRun(t, co, m, s, n)
				}
			}
		})
	}
}

// TestWorkersLargeModels runs the full-size models (and an imported ONNX
// model with branches). By default one strategy on 3 workers for ResNet-18
// and the exported SqueezeNet; IOP_E2E_FULL=1 runs every strategy on 2, 3
// and 4 workers for alexnet, vgg16, resnet18, mobilenetv2 and squeezenet,
// over loopback and, as root, over the netns testbed (links shaped by tbf
// at 1 Gbit/s).
func TestWorkersLargeModels(t *testing.T) {
	if testing.Short() {
		t.Skip("large models in -short mode")
	}
	dir := t.TempDir()
	onnxPath := filepath.Join(dir, "squeezenet.onnx")
	if out, err := exec.Command(iopBin, "zoo", "export", "squeezenet", "-o", onnxPath).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	jobs := []largeJob{
		{"resnet18", []string{"iop"}, []int{3}},
		{onnxPath, []string{"coedge"}, []int{3}},
	}
	if full() {
		jobs = nil
		for _, m := range []string{"alexnet", "vgg16", "resnet18", "mobilenetv2", onnxPath} {
			jobs = append(jobs, largeJob{m, planner.Strategies, []int{2, 3, 4}})
		}
	}
	modes := []string{"loopback"}
	if err := testbed.Available(); err == nil {
		modes = append(modes, "netns")
	} else {
		t.Logf("netns testbed not available (%v): loopback only", err)
	}
	for _, mode := range modes {
		for _, n := range []int{2, 3, 4} {
			var mine []largeJob
			for _, j := range jobs {
				for _, k := range j.ns {
					if k == n {
						mine = append(mine, j)
					}
				}
			}
			if len(mine) == 0 {
				continue
			}
			t.Run(fmt.Sprintf("%s/n%d", mode, n), func(t *testing.T) {
				cfg := LocalConfig{N: n, Mode: mode}
				if mode == "netns" {
					cfg.Bandwidth = 125e6
				}
				runLargeModels(t, startWorkersOn(t, cfg), mine, n)
			})
		}
	}
}

// largeJob is a model with the strategies and worker counts to run it on.
type largeJob struct {
	model      string
	strategies []string
	ns         []int
}

// runLargeModels deploys and runs each job's strategies on l's n workers,
// comparing with single-device inference.
func runLargeModels(t *testing.T, l *Local, jobs []largeJob, n int) {
	co := newCoordinator(l, Options{RequestTimeout: 5 * time.Minute})
	defer co.Close()
	for _, j := range jobs {
		m := loadTestModel(t, j.model)
		for _, s := range j.strategies {
			t0 := time.Now()
			res := deployRun(t, co, m, s, n)
			t.Logf("%s %s n=%d (%s): deploy+run %v, latency %v", filepath.Base(j.model), s, n, l.Emulation,
				time.Since(t0).Round(time.Millisecond), res.Latency.Round(time.Microsecond))
		}
	}
}

// TestRedeploySkipped: a second deploy of the same plan sends nothing.
func TestRedeploySkipped(t *testing.T) {
	l := startWorkers(t, 2, nil)
	co := newCoordinator(l, Options{})
	defer co.Close()
	m := loadTestModel(t, "tiny-resnet")
	deployRun(t, co, m, "iop", 2)
	co2 := newCoordinator(l, Options{})
	defer co2.Close()
	ps := compileFor(t, m, "iop", 2)
	ds, err := co2.Deploy(context.Background(), ps, "tiny-resnet/iop/2", m.name)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Deployed) != 0 {
		t.Fatalf("re-deployed %v although the workers hold the plan", ds.Deployed)
	}
	res, err := co2.Run(context.Background(), []*tensor.Tensor{m.x})
	if err != nil {
		t.Fatal(err)
	}
	if err := tensor.AllClose(res.Outputs[0], m.want[0], 1e-4, 1e-5); err != nil {
		t.Fatal(err)
	}
}

func compileFor(t testing.TB, m *testModel, strategy string, n int) *partition.Programs {
	t.Helper()
	ps, err := planner.Programs(&planner.Problem{Graph: m.g, Cluster: cluster.Uniform(n, 4, 0, 12.5e6, 0.2), Params: cost.DefaultParams, ModelName: m.name}, strategy)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestMutualTLS runs a request with every connection over mutual TLS, and
// checks that a coordinator without a certificate of the cluster CA is
// refused.
func TestMutualTLS(t *testing.T) {
	names := []string{"dev0", "dev1", "dev2", "coordinator", "intruder"}
	files, err := transport.GenerateCerts(filepath.Join(t.TempDir(), "certs"), names, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var extra [][]string
	for _, d := range names[:3] {
		f := files[d]
		extra = append(extra, []string{"--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key})
	}
	l := startWorkers(t, 3, extra)
	cfg, err := files["coordinator"].Config()
	if err != nil {
		t.Fatal(err)
	}
	co := newCoordinator(l, Options{TLS: cfg})
	defer co.Close()
	deployRun(t, co, loadTestModel(t, "tiny-inception"), "iop", 3)

	// A certificate from another CA is refused.
	other, err := transport.GenerateCerts(filepath.Join(t.TempDir(), "other"), []string{"coordinator"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := other["coordinator"].Config()
	if err != nil {
		t.Fatal(err)
	}
	co2 := newCoordinator(l, Options{TLS: bad, ConnectTimeout: time.Second})
	defer co2.Close()
	if _, err := co2.Status(context.Background()); err == nil {
		t.Fatal("a coordinator with a foreign certificate was accepted")
	}
	// Plain TCP is refused too.
	co3 := newCoordinator(l, Options{ConnectTimeout: time.Second})
	defer co3.Close()
	if _, err := co3.Status(context.Background()); err == nil {
		t.Fatal("a plain-TCP coordinator was accepted by TLS workers")
	}
}

// TestShapedRun runs over the loopback token-bucket emulation and checks
// that the link rate shows in the latency.
func TestShapedRun(t *testing.T) {
	l := startWorkers(t, 2, nil)
	m := loadTestModel(t, "tiny-densenet")
	ps := compileFor(t, m, "hp", 2)
	var sent int64
	for _, p := range ps.Devices {
		for _, s := range p.Steps {
			if s.Kind == partition.Send {
				sent = max(sent, s.Bytes)
			}
		}
	}
	rate := 4e6 // bytes/s
	co := newCoordinator(l, Options{Shaping: worker.Shaping{Rate: rate}})
	defer co.Close()
	if _, err := co.Deploy(context.Background(), ps, "shaped", m.name); err != nil {
		t.Fatal(err)
	}
	res, err := co.Run(context.Background(), []*tensor.Tensor{m.x})
	if err != nil {
		t.Fatal(err)
	}
	if err := tensor.AllClose(res.Outputs[0], m.want[0], 1e-4, 1e-5); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, d := range res.Devices {
		var b int64
		for _, e := range d.Events {
			b += e.BytesOut
		}
		total = max(total, b)
	}
	// The buckets (up and down) pass one burst each at once.
	floor := time.Duration(float64(total-2*64<<10) / rate * float64(time.Second))
	t.Logf("busiest device sent %d bytes; latency %v, link-time floor %v", total, res.Latency, floor)
	if res.Latency < floor*8/10 {
		t.Fatalf("latency %v below the link-time floor %v: shaping not applied", res.Latency, floor)
	}
}

// runCLI runs the iop binary and returns stdout, stderr and the error.
func runCLI(t testing.TB, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(iopBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestRunLocalCLI is the newcomer's command: iop run MODEL --local N.
func TestRunLocalCLI(t *testing.T) {
	dir := t.TempDir()
	out, stderr, err := runCLI(t, "run", "tiny-resnet", "--local", "3", "--emulation", "loopback", "--json", "--repeat", "3", "--output-dir", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var rep struct {
		LatencyMS          float64   `json:"latency_ms"`
		PredictedLatencyMS float64   `json:"predicted_latency_ms"`
		Emulation          string    `json:"emulation"`
		LatenciesMS        []float64 `json:"latencies_ms"`
		Devices            []struct {
			Name                     string `json:"name"`
			PeakMemoryBytes          int64  `json:"peak_memory_bytes"`
			PredictedPeakMemoryBytes int64  `json:"predicted_peak_memory_bytes"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.LatencyMS <= 0 || rep.PredictedLatencyMS <= 0 || rep.Emulation != EmulationLoopback || len(rep.Devices) != 3 || len(rep.LatenciesMS) != 3 {
		t.Fatalf("report: %+v", rep)
	}
	for _, d := range rep.Devices {
		if d.PeakMemoryBytes <= 0 || d.PredictedPeakMemoryBytes <= 0 {
			t.Fatalf("device memory: %+v", d)
		}
	}
	got, _, err := onnx.ReadTensorFile(filepath.Join(dir, "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	want := loadTestModel(t, "tiny-resnet")
	x := zoo.Input("tiny-resnet", 1)
	s, err := engine.New(want.g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ref, err := s.Run(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := tensor.AllClose(got, ref[0], 1e-4, 1e-5); err != nil {
		t.Fatal(err)
	}
	// The text report names the emulation and has the per-node table.
	out, stderr, err = runCLI(t, "run", "tiny-vgg", "--local", "2", "--emulation", "loopback", "--strategy", "optimal")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"emulation loopback+token-bucket", "top-5", "predicted ms", "peak memory (VmHWM)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestRunLocalTestbed runs `iop run --local` on the kernel testbed
// (network namespaces, tc-shaped links) when this machine has it.
func TestRunLocalTestbed(t *testing.T) {
	if err := testbed.Available(); err != nil {
		t.Skipf("testbed not available: %v", err)
	}
	out, stderr, err := runCLI(t, "run", "tiny-densenet", "--local", "2", "--emulation", "netns", "--bandwidth", "50Mbps", "--strategy", "hp", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var rep struct {
		LatencyMS          float64 `json:"latency_ms"`
		PredictedLatencyMS float64 `json:"predicted_latency_ms"`
		Emulation          string  `json:"emulation"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("netns+tc at 50 Mbit/s: latency %.1f ms, predicted %.1f ms", rep.LatencyMS, rep.PredictedLatencyMS)
	if rep.Emulation != EmulationNetns {
		t.Fatalf("emulation %q, want %q", rep.Emulation, EmulationNetns)
	}
}

// TestWorkerSteadySysmon checks that a worker runs with the GODEBUG
// setting that keeps the runtime's sysmon from polling every 20 µs
// (worker.SteadySysmon re-executes it, keeping its pid).
func TestWorkerSteadySysmon(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("re-execution with the setting is Linux only")
	}
	l := startWorkers(t, 1, nil)
	l.mu.Lock()
	pid := l.procs[0].Process.Pid
	l.mu.Unlock()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	var godebug string
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			godebug = v
		}
	}
	if !slices.Contains(strings.Split(godebug, ","), worker.SteadySysmonSetting) {
		t.Errorf("worker (pid %d) runs with GODEBUG=%q, want %s in it", pid, godebug, worker.SteadySysmonSetting)
	}
	// It keeps its name (ps, top).
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(comm)) != filepath.Base(iopBin) {
		t.Errorf("worker (pid %d) is named %q, want %q (%v)", pid, comm, filepath.Base(iopBin), err)
	}
}
