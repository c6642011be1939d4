package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/plan"
	"github.com/iop-edge/iop/internal/planner"
)

// clusterFlags are the flags that describe a cluster without a spec file.
type clusterFlags struct {
	file      string
	devices   int
	bandwidth string
	gflops    float64
	memory    string
	latency   float64
	topology  string
}

func (c *clusterFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.file, "cluster", "", "cluster spec YAML (devices, links, topology)")
	f.IntVar(&c.devices, "devices", 3, "number of identical devices (without --cluster)")
	f.StringVar(&c.bandwidth, "bandwidth", "100Mbps", "link bandwidth (without --cluster)")
	f.Float64Var(&c.gflops, "device-gflops", cluster.DefaultGFLOPS, "device speed in GFLOP/s (without --cluster)")
	f.StringVar(&c.memory, "device-memory", "1GiB", "device memory limit (without --cluster; 0: unlimited)")
	f.Float64Var(&c.latency, "latency", cluster.DefaultLatencyMS, "per-message latency in ms (without --cluster)")
	f.StringVar(&c.topology, "topology", "switched", "switched or shared (without --cluster)")
}

func (c *clusterFlags) spec(cmd *cobra.Command) (*cluster.Spec, error) {
	if c.file != "" {
		for _, fl := range []string{"devices", "bandwidth", "device-gflops", "device-memory", "latency", "topology"} {
			if cmd.Flags().Changed(fl) {
				return nil, usageError{fmt.Errorf("--%s conflicts with --cluster (edit the spec file instead)", fl)}
			}
		}
		return cluster.Load(c.file)
	}
	if c.devices < 1 {
		return nil, usageError{fmt.Errorf("--devices must be at least 1")}
	}
	bw, err := cluster.ParseBandwidth(c.bandwidth)
	if err != nil {
		return nil, usageError{fmt.Errorf("--bandwidth: %w", err)}
	}
	mem, err := cluster.ParseBytes(c.memory)
	if err != nil {
		return nil, usageError{fmt.Errorf("--device-memory: %w", err)}
	}
	s := cluster.Uniform(c.devices, c.gflops, mem, cluster.Bandwidth(bw), c.latency)
	s.Topology = cluster.Topology(c.topology)
	if err := s.Validate(); err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

// problem loads and optimizes MODEL and builds the planning problem; the
// cost model is calibrated with the spec's measured layer times of MODEL
// (`iop profile --model`), if it has any.
func problem(model string, spec *cluster.Spec) (*planner.Problem, error) {
	g, err := plannedGraph(model)
	if err != nil {
		return nil, err
	}
	prm := cost.DefaultParams
	prm.Calibration = cost.CalibrationFor(g, spec, modelKey(model))
	return &planner.Problem{Graph: g, Cluster: spec, Params: prm, ModelName: model}, nil
}

// plannedGraph loads MODEL and runs the passes the planner plans on.
func plannedGraph(model string) (*graph.Graph, error) {
	g, err := loadModel(model)
	if err != nil {
		return nil, err
	}
	if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
		return nil, err
	}
	return g, nil
}

// modelKey names MODEL in a cluster spec's layer_ms: a zoo name, or an
// ONNX file's base name without the extension.
func modelKey(model string) string {
	return strings.TrimSuffix(filepath.Base(model), ".onnx")
}

func newPlanCmd() *cobra.Command {
	var (
		cf       clusterFlags
		strategy string
		out      string
		asJSON   bool
		compare  bool
	)
	cmd := &cobra.Command{
		Use:   "plan MODEL [--cluster FILE | --devices N ...] --strategy S [-o plan.json]",
		Short: "Partition a model across a cluster and predict latency and memory",
		Long: `Plans how MODEL runs on the cluster with one strategy:

  single   the whole model on the fastest device that fits
  oc       every Conv/Gemm split by output channels, all-gather after each
  hp       Conv/pooling split by rows, gathered and re-sliced after each
  coedge   CoEdge: row stripes with halo exchange, replicated conv weights
  iop      Interleaved Operator Partitioning (OC/IC pairs, greedy)
  optimal  the best plan the cost model can find (mixes all schemes)

With --compare, all strategies side by side.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := cf.spec(cmd)
			if err != nil {
				return err
			}
			pr, err := problem(args[0], spec)
			if err != nil {
				return err
			}
			if compare {
				return printCompare(cmd.OutOrStdout(), pr, asJSON)
			}
			p, err := planner.Make(pr, strategy)
			if err != nil {
				return err
			}
			if out != "" {
				if err := p.Save(out); err != nil {
					return err
				}
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(planSummary(pr, p))
			}
			printPlan(cmd.OutOrStdout(), pr, p)
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&strategy, "strategy", "iop", "single, oc, hp, coedge, iop or optimal")
	f.StringVarP(&out, "output", "o", "", "write the plan as JSON to this file")
	f.BoolVar(&asJSON, "json", false, "print a JSON summary")
	f.BoolVar(&compare, "compare", false, "compare all strategies")
	return cmd
}

type deviceSummary struct {
	Name            string  `json:"name"`
	PeakMemoryBytes int64   `json:"peak_memory_bytes"`
	WeightBytes     int64   `json:"weight_bytes"`
	ComputeMS       float64 `json:"compute_ms"`
	BytesSent       int64   `json:"bytes_sent"`
	MemoryLimit     int64   `json:"memory_limit_bytes,omitempty"`
}

type summary struct {
	Strategy           string          `json:"strategy"`
	PredictedLatencyMS float64         `json:"predicted_latency_ms"`
	SpeedupOverSingle  float64         `json:"speedup_over_single,omitempty"`
	ComputeFloorMS     float64         `json:"compute_floor_ms"`
	BytesSent          int64           `json:"bytes_sent"`
	Messages           int             `json:"messages"`
	MaxPeakMemory      int64           `json:"max_peak_memory_bytes"`
	SumPeakMemory      int64           `json:"sum_peak_memory_bytes"`
	Devices            []deviceSummary `json:"devices"`
	Error              string          `json:"error,omitempty"`
	// OverMemory names the first device whose predicted peak exceeds its
	// limit ("" when the plan fits).
	OverMemory string `json:"over_memory,omitempty"`
}

func planSummary(pr *planner.Problem, p *plan.Plan) summary {
	s := summary{Strategy: p.Strategy, PredictedLatencyMS: p.Prediction.LatencyMS, BytesSent: p.Prediction.BytesSent,
		Messages: p.Prediction.Messages, ComputeFloorMS: computeFloorMS(pr)}
	if d := planner.Fits(pr, p.Prediction); d >= 0 {
		s.OverMemory = pr.Cluster.Devices[d].Name
	}
	for d, dp := range p.Prediction.Devices {
		s.Devices = append(s.Devices, deviceSummary{Name: dp.Name, PeakMemoryBytes: dp.PeakMemoryBytes, WeightBytes: dp.WeightBytes,
			ComputeMS: dp.ComputeMS, BytesSent: dp.BytesSent, MemoryLimit: int64(pr.Cluster.Devices[d].Memory)})
		s.MaxPeakMemory = max(s.MaxPeakMemory, dp.PeakMemoryBytes)
		s.SumPeakMemory += dp.PeakMemoryBytes
	}
	return s
}

// computeFloorMS is total FLOPs over total device speed: perfect
// parallelism with free communication.
func computeFloorMS(pr *planner.Problem) float64 {
	var t float64
	for _, n := range pr.Graph.Nodes {
		fl := float64(ops.NodeFLOPs(pr.Graph, n))
		var speed float64
		for d := range pr.Cluster.Devices {
			speed += pr.Cluster.Speed(d, string(ops.NodeClass(pr.Graph, n)))
		}
		t += fl / speed
	}
	return t * 1e3
}

func printPlan(w io.Writer, pr *planner.Problem, p *plan.Plan) {
	g := pr.Graph
	fmt.Fprintf(w, "model %s, strategy %s, %d devices (%s, %s)\n", pr.ModelName, p.Strategy, pr.Cluster.N(), pr.Cluster.Link.Bandwidth, pr.Cluster.Topology)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tnode\top\tscheme\tout layout\tcompute ms (per device)\tcomm ms")
	for i, np := range p.Nodes {
		comp := make([]string, len(np.ComputeMS))
		for d, v := range np.ComputeMS {
			comp[d] = fmt.Sprintf("%.2f", v)
		}
		lay := np.Out.String()
		if np.In != nil {
			lay = np.In.String() + "→P"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%.2f\n", i, np.Node, opLabel(g.Nodes[i]), np.Scheme, lay, strings.Join(comp, " "), np.CommMS)
	}
	tw.Flush()
	printTotals(w, planSummary(pr, p))
}

func opLabel(n *graph.Node) string {
	if a := n.Str(graph.FusedActivation, ""); a != "" {
		return n.Op + "+" + a
	}
	return n.Op
}

func printTotals(w io.Writer, s summary) {
	fmt.Fprintf(w, "predicted latency %.2f ms (compute floor %.2f ms), %s sent in %d messages\n",
		s.PredictedLatencyMS, s.ComputeFloorMS, humanBytes(s.BytesSent), s.Messages)
	for _, d := range s.Devices {
		lim := "unlimited"
		if d.MemoryLimit > 0 {
			lim = humanBytes(d.MemoryLimit)
		}
		fmt.Fprintf(w, "  %-8s peak memory %10s (weights %10s, limit %s), compute %.2f ms, sent %s\n",
			d.Name, humanBytes(d.PeakMemoryBytes), humanBytes(d.WeightBytes), lim, d.ComputeMS, humanBytes(d.BytesSent))
	}
}

func printCompare(w io.Writer, pr *planner.Problem, asJSON bool) error {
	var rows []summary
	var single float64
	for _, s := range planner.Strategies {
		p, err := planner.Make(pr, s)
		if err != nil {
			rows = append(rows, summary{Strategy: s, Error: strings.TrimPrefix(oneLine(err), s+": ")})
			continue
		}
		r := planSummary(pr, p)
		if s == "single" {
			single = r.PredictedLatencyMS
		}
		rows = append(rows, r)
	}
	for i := range rows {
		if single > 0 && rows[i].Error == "" {
			rows[i].SpeedupOverSingle = single / rows[i].PredictedLatencyMS
		}
	}
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]any{"model": pr.ModelName, "cluster": pr.Cluster, "strategies": rows})
	}
	fmt.Fprintf(w, "model %s on %d devices, %s links (%s), %.1f GFLOP/s each on average; compute floor %.2f ms\n",
		pr.ModelName, pr.Cluster.N(), pr.Cluster.Link.Bandwidth, pr.Cluster.Topology, avgGFLOPS(pr.Cluster), computeFloorMS(pr))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tlatency ms\tspeed-up\tmax peak mem\tsum peak mem\tbytes sent\tmessages\tfits\t")
	var failed []summary
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t—\t\t\t\t\t\tno\t\n", r.Strategy)
			failed = append(failed, r)
			continue
		}
		speedup := "—"
		if r.SpeedupOverSingle > 0 {
			speedup = fmt.Sprintf("%.2f×", r.SpeedupOverSingle)
		}
		fits := "yes"
		if r.OverMemory != "" {
			fits = "no (" + r.OverMemory + ")"
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%s\t%s\t%s\t%d\t%s\t\n", r.Strategy, r.PredictedLatencyMS, speedup,
			humanBytes(r.MaxPeakMemory), humanBytes(r.SumPeakMemory), humanBytes(r.BytesSent), r.Messages, fits)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range failed {
		fmt.Fprintf(w, "%s: %s\n", r.Strategy, r.Error)
	}
	return nil
}

func avgGFLOPS(s *cluster.Spec) float64 {
	var t float64
	for _, d := range s.Devices {
		t += d.GFLOPS
	}
	return t / float64(len(s.Devices))
}
