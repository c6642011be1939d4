package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/coordinator"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/plan"
	"github.com/iop-edge/iop/internal/planner"
	"github.com/iop-edge/iop/internal/profile"
	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/testbed"
	"github.com/iop-edge/iop/internal/transport"
	"github.com/iop-edge/iop/internal/worker"
	"github.com/iop-edge/iop/internal/zoo"
)

type runFlags struct {
	cf         clusterFlags
	local      int
	planFile   string
	strategy   string
	inputs     []string
	outDir     string
	asJSON     bool
	repeat     int
	warmup     int
	seed       uint64
	threads    int
	emulation  string
	cpuQuota   float64
	useTLS     bool
	tf         tlsFlags
	timeout    time.Duration
	meshTO     time.Duration
	verbose    bool
	trace      string
	traceReqs  string
	workerProf string
	repeatTime time.Duration
	profile    bool
	profCache  string
	profBudget time.Duration
	cpuPeriod  time.Duration
}

func newRunCmd() *cobra.Command {
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "run MODEL|PLAN (--cluster FILE | --local N) [--strategy S | --plan FILE] [--input FILE]",
		Short: "Run a model across worker processes and compare with the prediction",
		Long: `Deploys a plan to 'iop worker' daemons and runs requests on them: each worker
gets its program and only its own weight shards, the devices exchange
activations directly, and the outputs and traces come back here.

  --cluster FILE  workers already running at the spec's device addresses;
                  a worker that holds this plan already is not re-deployed.
  --local N       start N worker processes on this machine, run, stop them.
                  With root and the kernel testbed available they run in
                  network namespaces with tc-shaped links (emulation
                  "netns+tc"); otherwise on loopback with an in-process token
                  bucket at the same rate ("loopback+token-bucket").

MODEL is an .onnx file or a zoo name (planned with --strategy), PLAN a plan
file from 'iop plan -o' (its model is loaded by the name it records), or use
MODEL with --plan FILE. A zoo model without --input runs on its
deterministic random input. Reports the top-5, measured and predicted
latency (median over --repeat requests), predicted vs measured time per
model node and each device's peak memory (VmHWM) against the prediction.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, &rf, args[0])
		},
	}
	rf.cf.register(cmd)
	f := cmd.Flags()
	f.IntVar(&rf.local, "local", 0, "start N local worker processes (instead of --cluster addresses)")
	f.StringVar(&rf.planFile, "plan", "", "run this plan file (made for MODEL) instead of planning")
	f.StringVar(&rf.strategy, "strategy", "iop", "single, oc, hp, coedge, iop or optimal")
	f.StringArrayVar(&rf.inputs, "input", nil, "input file: TensorProto .pb or JPEG/PNG image (repeat for several inputs)")
	f.StringVar(&rf.outDir, "output-dir", "", "write outputs as output_N.pb TensorProto files into this directory")
	f.BoolVar(&rf.asJSON, "json", false, "print one JSON object")
	f.IntVar(&rf.repeat, "repeat", 1, "run K requests and report the median latency")
	f.DurationVar(&rf.repeatTime, "repeat-time", 0, "with --repeat: time the requests for about this long, running more than --repeat when the predicted latency is short (at most 1000): a steadier median for fast models")
	f.IntVar(&rf.warmup, "warmup", 1, "untimed requests after deploying (the first request touches fresh memory); its latency is reported as first_latency_ms")
	f.Uint64Var(&rf.seed, "seed", 1, "seed of the random input used when a zoo model gets no --input")
	f.IntVar(&rf.threads, "threads", 0, "kernel threads per worker (0: --local shares the cores, else all cores)")
	f.StringVar(&rf.emulation, "emulation", "auto", "--local: auto, netns (kernel testbed) or loopback (token bucket)")
	f.Float64Var(&rf.cpuQuota, "cpu-quota", 0, "--local on the testbed: CPU per device as a fraction of a core (0: unlimited)")
	f.BoolVar(&rf.useTLS, "tls", false, "--local: generate a cluster CA and run every connection over mutual TLS")
	f.DurationVar(&rf.timeout, "timeout", 5*time.Minute, "bound on each request")
	f.DurationVar(&rf.meshTO, "mesh-timeout", 10*time.Second, "bound on the workers connecting to each other")
	f.BoolVar(&rf.verbose, "nodes", true, "print the per-node predicted vs measured table")
	f.StringVar(&rf.trace, "trace", "", "write the last request's per-device traces (every step: start, end, bytes) and the predicted timeline as JSON to this file")
	f.StringVar(&rf.traceReqs, "trace-requests", "", "write every timed request's latency and per-device traces to this file, one JSON object per line (how requests vary)")
	f.StringVar(&rf.workerProf, "worker-cpuprofile", "", "--local: each worker writes a CPU profile of its life (go tool pprof) to DIR/<device>.pprof")
	f.DurationVar(&rf.cpuPeriod, "cpu-period", 0, "--local on the testbed with --cpu-quota: the CFS period of the quota (0: 5ms, or 1ms/quota when longer). A short period makes a worker a steadily slower device instead of a full-speed one that stalls for the rest of each period once its quota is spent")
	f.BoolVar(&rf.profile, "profile", false, "--local: profile the started workers (operator speed inside their CPU quota, the model's own layers, link goodput and latency through the emulated links) and plan with the measured spec")
	f.StringVar(&rf.profCache, "profile-cache", "", "--local --profile: read the measured spec from this file if it exists (timing only the model's layers if it has none for this model), else write it there (same --local N, --cpu-quota and --bandwidth only)")
	f.DurationVar(&rf.profBudget, "profile-budget", 0, "--profile: operator-speed measuring time per device (0: iop profile's default)")
	rf.tf.register(cmd)
	return cmd
}

// runReport is what `iop run` prints (as JSON with --json).
type runReport struct {
	Model     string  `json:"model"`
	Strategy  string  `json:"strategy"`
	PlanHash  string  `json:"plan_hash"`
	Emulation string  `json:"emulation"`
	Bandwidth string  `json:"bandwidth,omitempty"`
	CPUQuota  float64 `json:"cpu_quota,omitempty"`
	Profiled  bool    `json:"profiled"`
	// CalibratedNodes counts the (device, node) pairs whose estimate the
	// spec's measured layer times calibrated (layer_ms).
	CalibratedNodes    int                        `json:"calibrated_nodes,omitempty"`
	PlannedLink        string                     `json:"planned_link,omitempty"`
	PlannedGFLOPS      []map[string]float64       `json:"planned_gflops_by_class,omitempty"`
	TLS                bool                       `json:"tls"`
	LatencyMS          float64                    `json:"latency_ms"`
	LatenciesMS        []float64                  `json:"latencies_ms"`
	FirstLatencyMS     float64                    `json:"first_latency_ms,omitempty"`
	PredictedLatencyMS float64                    `json:"predicted_latency_ms"`
	Deployed           []string                   `json:"deployed"`
	DeployMS           float64                    `json:"deploy_ms"`
	Outputs            []outputInfo               `json:"outputs"`
	Top5               []classScore               `json:"top5,omitempty"`
	Nodes              []coordinator.NodeTime     `json:"nodes"`
	Devices            []coordinator.DeviceReport `json:"devices"`
}

func runRun(cmd *cobra.Command, rf *runFlags, arg string) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	// On Ctrl-C the request is canceled and the local workers and testbed
	// are still taken down.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if rf.local <= 0 && rf.cf.file == "" {
		return usageError{fmt.Errorf("give --cluster FILE (running workers) or --local N")}
	}
	if rf.profile && rf.local <= 0 {
		return usageError{fmt.Errorf("--profile needs --local N (profile a real cluster with 'iop profile --cluster')")}
	}
	if rf.repeat < 1 {
		return usageError{fmt.Errorf("--repeat must be at least 1")}
	}
	if rf.warmup < 0 {
		return usageError{fmt.Errorf("--warmup must not be negative")}
	}
	// The model and the plan.
	model := arg
	var loaded *plan.Plan
	if rf.planFile != "" {
		p, err := plan.Load(rf.planFile)
		if err != nil {
			return err
		}
		loaded = p
	} else if strings.HasSuffix(arg, ".json") {
		p, err := plan.Load(arg)
		if err != nil {
			return err
		}
		loaded, model = p, p.Model.Name
	}
	var spec *cluster.Spec
	var err error
	switch {
	case rf.cf.file != "":
		if spec, err = cluster.Load(rf.cf.file); err != nil {
			return err
		}
		if rf.local > 0 && rf.local != spec.N() {
			return usageError{fmt.Errorf("--local %d but the cluster spec has %d devices", rf.local, spec.N())}
		}
	case loaded != nil:
		spec = loaded.Cluster
		if rf.local != spec.N() {
			return usageError{fmt.Errorf("--local %d but the plan is for %d devices", rf.local, spec.N())}
		}
	default:
		if cmd.Flags().Changed("devices") {
			return usageError{fmt.Errorf("--devices conflicts with --local (give the number to --local)")}
		}
		rf.cf.devices = rf.local
		if spec, err = rf.cf.spec(cmd); err != nil {
			return err
		}
	}
	if rf.local == 0 {
		for _, d := range spec.Devices {
			if d.Address == "" {
				return fmt.Errorf("cluster spec: device %s has no address (where does its 'iop worker' listen?)", d.Name)
			}
		}
	}
	emuBW := spec.Link.Bandwidth
	// Workers (started before planning: --profile plans with their measured speeds).
	opt := coordinator.Options{RequestTimeout: rf.timeout, MeshTimeout: rf.meshTO, Threads: rf.threads}
	names := make([]string, spec.N())
	for i, d := range spec.Devices {
		names[i] = d.Name
	}
	addrs := make([]string, spec.N())
	emulation := coordinator.EmulationNone
	tlsFiles := rf.tf.files
	if rf.local > 0 {
		if opt.Threads == 0 {
			opt.Threads = max(1, runtime.NumCPU()/rf.local)
		}
		if spec.Coordinator == nil {
			// This process reaches local workers unshaped (inside their
			// namespaces, or on loopback); --profile measures the rate.
			spec.Coordinator = &localCoordinatorLink
		}
		if rf.workerProf != "" {
			if err := os.MkdirAll(rf.workerProf, 0o755); err != nil {
				return fmt.Errorf("--worker-cpuprofile: %w", err)
			}
		}
		lc := coordinator.LocalConfig{N: rf.local, Mode: rf.emulation, Bandwidth: float64(spec.Link.Bandwidth),
			LatencyMS: spec.Link.LatencyMS, CPUQuota: rf.cpuQuota, CPUPeriod: rf.cpuPeriod, Names: names, LogLevel: logLevelOf(cmd)}
		for _, d := range spec.Devices {
			lc.MemoryLimits = append(lc.MemoryLimits, int64(d.Memory))
			lc.ExtraArgs = append(lc.ExtraArgs, workerArgs(rf, d.Name))
		}
		if rf.useTLS {
			dir, err := os.MkdirTemp("", "iop-certs-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			files, err := transport.GenerateCerts(dir, append(append([]string(nil), names...), "coordinator"), 24*time.Hour)
			if err != nil {
				return fmt.Errorf("generate certificates: %w", err)
			}
			lc.TLS, tlsFiles = files, files["coordinator"]
		}
		lc.Stderr = cmd.ErrOrStderr()
		local, err := coordinator.StartLocal(ctx, lc)
		if err != nil {
			return err
		}
		defer local.Stop()
		addrs, emulation, opt.Dial = local.Addrs, local.Emulation, local.Dial
		opt.Shaping = worker.Shaping{Rate: local.Bandwidth, LatencyMS: local.LatencyMS}
		if spec.Link.BurstBytes == 0 {
			spec.Link.BurstBytes = emulatedBurst(local.Emulation, local.Bandwidth)
		}
		if rf.profile {
			emuBW = spec.Link.Bandwidth
			if spec, err = profileLocal(ctx, cmd, rf, spec, model, local, opt.Threads); err != nil {
				return err
			}
			if loaded != nil {
				loaded.Cluster = spec
			}
		}
	} else {
		for i, d := range spec.Devices {
			addrs[i] = d.Address
		}
	}
	if tlsFiles.Enabled() {
		cfg, err := tlsFiles.Config()
		if err != nil {
			return err
		}
		opt.TLS = cfg
	}
	pr, err := problem(model, spec)
	if err != nil {
		return err
	}
	var p *plan.Plan
	if loaded != nil {
		if err := planner.Validate(loaded, pr); err != nil {
			return err
		}
		p = loaded
		p.Cluster = spec
	} else if p, err = planner.Make(pr, rf.strategy); err != nil {
		return err
	}
	if rf.repeatTime > 0 && p.Prediction != nil && p.Prediction.LatencyMS > 0 {
		more := int(math.Ceil(float64(rf.repeatTime.Milliseconds()) / p.Prediction.LatencyMS))
		rf.repeat = max(rf.repeat, min(more, 1000))
	}
	hash := planHash(p)
	tl, err := planner.Evaluate(pr, p)
	if err != nil {
		return err
	}
	ps, err := partition.Compile(pr.Graph, p, partition.Options{})
	if err != nil {
		return err
	}
	// Inputs.
	var ins []*tensor.Tensor
	if len(rf.inputs) == 0 && isZooName(model) && len(pr.Graph.Inputs) == 1 {
		ins = []*tensor.Tensor{zoo.Input(model, rf.seed)}
	} else if ins, err = readInputs(pr.Graph, rf.inputs); err != nil {
		return err
	}
	co := coordinator.New(names, addrs, opt)
	defer co.Close()
	ds, err := co.Deploy(ctx, ps, hash, model)
	if err != nil {
		return err
	}
	rep := runReport{CPUQuota: rf.cpuQuota, Model: model, Strategy: p.Strategy, PlanHash: hash, Emulation: emulation, TLS: opt.TLS != nil,
		PredictedLatencyMS: p.Prediction.LatencyMS, DeployMS: float64(ds.Duration.Microseconds()) / 1e3}
	if emulation != coordinator.EmulationNone {
		rep.Bandwidth = emuBW.String()
	}
	for _, m := range pr.Params.Calibration {
		rep.CalibratedNodes += len(m)
	}
	if rf.profile {
		rep.Profiled = true
		rep.PlannedLink = fmt.Sprintf("%s, %.3f ms", spec.Link.Bandwidth, spec.Link.LatencyMS)
		for _, d := range spec.Devices {
			rep.PlannedGFLOPS = append(rep.PlannedGFLOPS, d.ByClass)
		}
	}
	for _, d := range ds.Deployed {
		rep.Deployed = append(rep.Deployed, names[d])
	}
	for k := 0; k < rf.warmup; k++ {
		r, err := co.Run(ctx, ins)
		if err != nil {
			return err
		}
		if k == 0 {
			rep.FirstLatencyMS = float64(r.Latency.Microseconds()) / 1e3
		}
	}
	var res *coordinator.Result
	var reqLog *json.Encoder
	if rf.traceReqs != "" {
		f, err := os.Create(rf.traceReqs)
		if err != nil {
			return err
		}
		defer f.Close()
		reqLog = json.NewEncoder(f)
	}
	for k := 0; k < rf.repeat; k++ {
		r, err := co.Run(ctx, ins)
		if err != nil {
			return err
		}
		rep.LatenciesMS = append(rep.LatenciesMS, float64(r.Latency.Microseconds())/1e3)
		if reqLog != nil {
			if err := reqLog.Encode(r); err != nil {
				return fmt.Errorf("--trace-requests: %w", err)
			}
		}
		if res == nil || r.Latency < res.Latency || k == rf.repeat-1 {
			res = r
		}
	}
	rep.LatencyMS = coordinator.Median(rep.LatenciesMS)
	rep.Nodes, rep.Devices = coordinator.Compare(p.Prediction, tl, res)
	for i, o := range res.Outputs {
		rep.Outputs = append(rep.Outputs, outputInfo{Name: pr.Graph.Outputs[i].Name, Shape: o.Shape})
	}
	if len(res.Outputs) > 0 {
		rep.Top5 = topK(res.Outputs[0], 5)
	}
	if rf.outDir != "" {
		if err := writeOutputs(rf.outDir, pr.Graph, res.Outputs); err != nil {
			return err
		}
	}
	if rf.trace != "" {
		b, err := json.MarshalIndent(map[string]any{"emulation": emulation, "measured": res, "predicted": tl}, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(rf.trace, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if rf.asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printRun(cmd.OutOrStdout(), rep, spec, rf.verbose)
	return nil
}

// planHash identifies a plan's partitioning (not its prediction): workers
// holding a deployment of the same hash are not deployed again.
func planHash(p *plan.Plan) string {
	c := *p
	c.Prediction = nil
	c.Nodes = make([]plan.NodePlan, len(p.Nodes))
	for i, n := range p.Nodes {
		n.ComputeMS, n.CommMS = nil, 0
		c.Nodes[i] = n
	}
	c.Cluster = nil
	b, _ := json.Marshal(struct {
		Plan    plan.Plan
		Devices int
	}{c, p.Cluster.N()})
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func logLevelOf(cmd *cobra.Command) string {
	if f := cmd.Flag("log-level"); f != nil {
		return f.Value.String()
	}
	return ""
}

func printRun(w io.Writer, r runReport, spec *cluster.Spec, nodes bool) {
	fmt.Fprintf(w, "model %s, strategy %s, %d devices, emulation %s", r.Model, r.Strategy, len(r.Devices), r.Emulation)
	if r.Bandwidth != "" {
		fmt.Fprintf(w, " (%s links)", r.Bandwidth)
	}
	if r.TLS {
		fmt.Fprint(w, ", mutual TLS")
	}
	if r.CalibratedNodes > 0 {
		fmt.Fprintf(w, ", cost model calibrated by %d measured layer times", r.CalibratedNodes)
	}
	fmt.Fprintln(w)
	if len(r.Deployed) > 0 {
		fmt.Fprintf(w, "deployed to %s in %.0f ms\n", strings.Join(r.Deployed, ", "), r.DeployMS)
	} else {
		fmt.Fprintln(w, "workers already held this plan; not re-deployed")
	}
	for i, o := range r.Outputs {
		fmt.Fprintf(w, "output %d %q: %v\n", i, o.Name, o.Shape)
	}
	if len(r.Top5) > 0 {
		fmt.Fprintln(w, "top-5:")
		for _, c := range r.Top5 {
			fmt.Fprintf(w, "  class %4d  score %9.4f  p=%.4f\n", c.Class, c.Score, c.Prob)
		}
	}
	if r.FirstLatencyMS > 0 {
		fmt.Fprintf(w, "first request (warm-up, untimed) %.2f ms\n", r.FirstLatencyMS)
	}
	if len(r.LatenciesMS) > 1 {
		fmt.Fprintf(w, "latency %.2f ms (median of %d), predicted %.2f ms\n", r.LatencyMS, len(r.LatenciesMS), r.PredictedLatencyMS)
	} else {
		fmt.Fprintf(w, "latency %.2f ms, predicted %.2f ms\n", r.LatencyMS, r.PredictedLatencyMS)
	}
	if nodes {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "node\top\tpredicted ms\tmeasured ms\t")
		for _, n := range r.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t\n", n.Node, n.Op, n.PredictedMS, n.MeasuredMS)
		}
		tw.Flush()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "device\tpeak memory (VmHWM)\tpredicted\tweights\tGo heap\tcompute ms\tpredicted\t")
	for _, d := range r.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t\n", d.Name, humanBytes(d.PeakMemoryBytes), humanBytes(d.PredictedPeakMemoryBytes),
			humanBytes(d.WeightBytes), humanBytes(d.HeapBytes), d.MeasuredComputeMS, d.PredictedComputeMS)
	}
	tw.Flush()
}

// localCoordinatorLink is the nominal link between `iop run --local` and
// its workers when it is not profiled: unshaped local TCP, whose goodput is
// bounded by the receiving worker's CPU (3.3 Gbit/s measured with a free
// core, 0.8 Gbit/s under a 0.45-core quota).
var localCoordinatorLink = cluster.Link{Bandwidth: 1e9 / 8 * 2, LatencyMS: 0.05}

// workerArgs are the extra command-line arguments of --local worker name.
func workerArgs(rf *runFlags, name string) []string {
	if rf.workerProf == "" {
		return nil
	}
	return []string{"--cpuprofile", filepath.Join(rf.workerProf, name+".pprof")}
}

// profileLocal measures the started local workers as 'iop profile
// --cluster --model' would (each worker's operator speed inside its
// cgroup, the model's own layers on each worker, each link's goodput and
// latency through the emulated links) and returns the spec to plan with:
// spec with the measured speeds, layer times and links. With
// --profile-cache an existing file is read instead (and only the model's
// layers measured if it has none for this model), or the result written.
func profileLocal(ctx context.Context, cmd *cobra.Command, rf *runFlags, spec *cluster.Spec, model string, local *coordinator.Local, threads int) (*cluster.Spec, error) {
	key := modelKey(model)
	base := spec
	cached := false
	if rf.profCache != "" {
		if _, err := os.Stat(rf.profCache); err == nil {
			s, err := cluster.Load(rf.profCache)
			if err != nil {
				return nil, err
			}
			if s.N() != spec.N() {
				return nil, fmt.Errorf("--profile-cache %s has %d devices, --local %d", rf.profCache, s.N(), spec.N())
			}
			if s.LayerMS[key] != nil {
				return s, nil
			}
			base, cached = s, true
		}
	}
	g, err := plannedGraph(model)
	if err != nil {
		return nil, err
	}
	in := *base
	in.Devices = append([]cluster.Device(nil), base.Devices...)
	idx := map[string]int{}
	for i := range in.Devices {
		in.Devices[i].Address = local.Addrs[i]
		idx[local.Addrs[i]] = i
	}
	d := profile.Dialer{}
	if local.Dial != nil {
		d.Net = func(ctx context.Context, addr string) (net.Conn, error) {
			return local.Dial(ctx, idx[addr], addr)
		}
	}
	if rf.tf.files.Enabled() || rf.useTLS {
		return nil, usageError{fmt.Errorf("--profile with TLS is not supported; profile without --tls")}
	}
	var link profile.LinkRequest
	switch local.Emulation {
	case coordinator.EmulationLoopback:
		// The workers shape their connections in process: so must the
		// probes between them, or they measure raw loopback.
		link.Rate, link.LatencyMS = local.Bandwidth, local.LatencyMS
	case coordinator.EmulationNetns:
		// tc shapes the rate; the per-message latency is held in process
		// by the receiving workers (no netem here), and so by the probes.
		link.LatencyMS = local.LatencyMS
	}
	out, _, err := profile.Cluster(ctx, &in, profile.ClusterOptions{
		Ops:       profile.OpsRequest{Threads: threads, BudgetMS: rf.profBudget.Milliseconds()},
		Link:      link,
		SkipOps:   cached,
		SkipLinks: cached,
		Model:     g,
		ModelKey:  key,
		Layers:    profile.LayersRequest{Threads: threads},
		Dialer:    d,
		Progress:  func(m string) { fmt.Fprintf(cmd.ErrOrStderr(), "profiling %s\n", m) },
	})
	if err != nil {
		return nil, err
	}
	for i := range out.Devices {
		out.Devices[i].Address = ""
		// The testbed's CPU quotas are CFS bandwidth limits: the cost
		// model simulates them period by period.
		if q, per := local.CPULimit(i); q > 0 {
			out.Devices[i].CPUQuota, out.Devices[i].CPUPeriodMS = q, float64(per.Microseconds())/1e3
		}
	}
	// The measurement's buffers stay resident in the workers (VmHWM is
	// reset per request, but only down to the current RSS): start them
	// afresh so the requests' peak memory is their own.
	for i := range local.Addrs {
		if err := local.Restart(ctx, i, workerArgs(rf, local.Names[i])...); err != nil {
			return nil, fmt.Errorf("restart worker %s after profiling: %w", local.Names[i], err)
		}
	}
	if rf.profCache != "" {
		if err := out.Save(rf.profCache); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// emulatedBurst is the payload a link of the local emulation passes at once
// after it idled, for a spec that was not profiled (`iop profile` measures
// it): tc tbf's bucket less the packets' headers (1448 of every 1514 bytes
// are data), or the in-process shaper's bucket, which counts only data.
func emulatedBurst(emulation string, rate float64) float64 {
	switch {
	case rate <= 0:
		return 0
	case emulation == coordinator.EmulationNetns:
		return math.Round(testbed.TBFBurst(rate) * 1448 / 1514)
	case emulation == coordinator.EmulationLoopback:
		return shaper.DefaultBurst
	}
	return 0
}
