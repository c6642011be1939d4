package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/engine"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/zoo"
)

func newInferCmd() *cobra.Command {
	var (
		inputs  []string
		outDir  string
		threads int
		bench   int
		profile bool
		asJSON  bool
		seed    uint64
	)
	cmd := &cobra.Command{
		Use:   "infer MODEL [--input FILE ...]",
		Short: "Run one inference on this machine",
		Long: `Runs MODEL (an .onnx file or a zoo name) on this machine.

Each --input is an ONNX TensorProto .pb file (the Nth feeds the Nth graph
input) or a JPEG/PNG image (resized and normalized the ImageNet way). A zoo
model without --input runs on a deterministic random input. With
--output-dir the outputs are written as output_0.pb, output_1.pb, ...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := loadModel(args[0])
			if err != nil {
				return err
			}
			var ins []*tensor.Tensor
			if len(inputs) == 0 && isZooName(args[0]) && len(g.Inputs) == 1 {
				ins = []*tensor.Tensor{zoo.Input(args[0], seed)}
			} else if ins, err = readInputs(g, inputs); err != nil {
				return err
			}
			shapes, err := engine.ShapesOf(g, ins)
			if err != nil {
				return err
			}
			// Integer inputs (shapes, axes, indices) are fixed at load time
			// so shape arithmetic on them folds.
			bound, ins := engine.BindIntegerInputs(g, ins)
			sess, err := engine.New(g, engine.Options{Threads: threads, InputShapes: shapes, Bind: bound})
			if err != nil {
				return err
			}
			defer sess.Close()
			outs, err := sess.Run(ins...)
			if err != nil {
				return err
			}
			if outDir != "" {
				if err := writeOutputs(outDir, sess.Graph(), outs); err != nil {
					return err
				}
			}
			res := inferResult{Model: args[0], Threads: threads,
				PeakActivationBytes: sess.PeakActivationBytes(), WeightBytes: sess.WeightBytes()}
			for i, o := range outs {
				res.Outputs = append(res.Outputs, outputInfo{Name: sess.Graph().Outputs[i].Name, Shape: o.Shape})
			}
			if len(outs) > 0 {
				res.Top5 = topK(outs[0], 5)
			}
			if bench > 0 {
				lat, err := benchmark(sess, ins, bench)
				if err != nil {
					return err
				}
				res.MedianMS, res.MinMS, res.Runs = median(lat), lat[0], len(lat)
			}
			if profile {
				k := max(bench, 5)
				if res.Nodes, err = profileNodes(sess, ins, k); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printInfer(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&inputs, "input", nil, "input file: TensorProto .pb or JPEG/PNG image (repeat for several inputs)")
	f.StringVar(&outDir, "output-dir", "", "write outputs as output_N.pb TensorProto files into this directory")
	f.IntVar(&threads, "threads", 0, "kernel threads (0: all cores)")
	f.IntVar(&bench, "bench", 0, "run K timed iterations after a warm-up and report median and minimum latency")
	f.BoolVar(&profile, "profile", false, "time every node (fastest of max(--bench, 5) runs) and print where the time goes")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.Uint64Var(&seed, "seed", 1, "seed of the random input used when a zoo model gets no --input")
	return cmd
}

type outputInfo struct {
	Name  string       `json:"name"`
	Shape tensor.Shape `json:"shape"`
}

type classScore struct {
	Class int     `json:"class"`
	Score float32 `json:"score"`
	Prob  float64 `json:"probability"`
}

type inferResult struct {
	Model               string       `json:"model"`
	Threads             int          `json:"threads"`
	Outputs             []outputInfo `json:"outputs"`
	Top5                []classScore `json:"top5,omitempty"`
	MedianMS            float64      `json:"median_ms,omitempty"`
	MinMS               float64      `json:"min_ms,omitempty"`
	Runs                int          `json:"runs,omitempty"`
	PeakActivationBytes int64        `json:"peak_activation_bytes"`
	WeightBytes         int64        `json:"weight_bytes"`
	Nodes               []nodeTime   `json:"nodes,omitempty"`
}

// nodeTime is one node's share of a profiled run.
type nodeTime struct {
	Name   string       `json:"name"`
	Op     string       `json:"op"`
	Shape  tensor.Shape `json:"output_shape"`
	MS     float64      `json:"ms"`
	GFLOPS float64      `json:"gflops_per_s,omitempty"`
}

// profileNodes runs the session k times and keeps each node's fastest time,
// which on a shared machine is the closest to its undisturbed cost.
func profileNodes(sess *engine.Session, ins []*tensor.Tensor, k int) ([]nodeTime, error) {
	var best []nodeTime
	var nodes []*graph.Node
	for r := 0; r <= k; r++ { // run 0 warms up
		_, steps, err := sess.RunProfiled(ins...)
		if err != nil {
			return nil, err
		}
		if best == nil {
			best = make([]nodeTime, len(steps))
			for i, st := range steps {
				nodes = append(nodes, st.Node)
				best[i] = nodeTime{Name: st.Node.Name, Op: st.Node.Op, MS: math.Inf(1)}
				if len(st.Node.Outputs) > 0 {
					best[i].Shape = sess.Graph().Values[st.Node.Outputs[0]].Shape
				}
			}
			continue
		}
		for i, st := range steps {
			best[i].MS = math.Min(best[i].MS, float64(st.Duration.Nanoseconds())/1e6)
		}
	}
	for i := range best {
		if f := ops.NodeFLOPs(sess.Graph(), nodes[i]); f > 0 && best[i].MS > 0 {
			best[i].GFLOPS = float64(f) / (best[i].MS * 1e6)
		}
	}
	return best, nil
}

// benchmark runs one warm-up and k timed iterations; it returns the sorted
// latencies in milliseconds.
func benchmark(sess *engine.Session, ins []*tensor.Tensor, k int) ([]float64, error) {
	if _, err := sess.Run(ins...); err != nil {
		return nil, err
	}
	lat := make([]float64, k)
	for i := range lat {
		t0 := time.Now()
		if _, err := sess.Run(ins...); err != nil {
			return nil, err
		}
		lat[i] = float64(time.Since(t0).Microseconds()) / 1000
	}
	sort.Float64s(lat)
	return lat, nil
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// topK returns the k best classes of a classifier output ([K] or [1,K]) with
// softmax probabilities; nil for other outputs.
func topK(t *tensor.Tensor, k int) []classScore {
	if t.DType != tensor.Float32 || t.Len() < k || (len(t.Shape) == 2 && t.Shape[0] != 1) || len(t.Shape) > 2 || len(t.Shape) == 0 {
		return nil
	}
	idx := make([]int, t.Len())
	mx := float64(t.F[0])
	for i := range idx {
		idx[i] = i
		mx = math.Max(mx, float64(t.F[i]))
	}
	var sum float64
	for _, v := range t.F {
		sum += math.Exp(float64(v) - mx)
	}
	sort.SliceStable(idx, func(a, b int) bool { return t.F[idx[a]] > t.F[idx[b]] })
	out := make([]classScore, k)
	for i := range out {
		c := idx[i]
		out[i] = classScore{Class: c, Score: t.F[c], Prob: math.Exp(float64(t.F[c])-mx) / sum}
	}
	return out
}

func printInfer(w io.Writer, r inferResult) {
	for i, o := range r.Outputs {
		fmt.Fprintf(w, "output %d %q: %v\n", i, o.Name, o.Shape)
	}
	if len(r.Top5) > 0 {
		fmt.Fprintln(w, "top-5:")
		for _, c := range r.Top5 {
			fmt.Fprintf(w, "  class %4d  score %9.4f  p=%.4f\n", c.Class, c.Score, c.Prob)
		}
	}
	fmt.Fprintf(w, "weights %s, peak activations %s\n", humanBytes(r.WeightBytes), humanBytes(r.PeakActivationBytes))
	if len(r.Nodes) > 0 {
		printNodeTimes(w, r.Nodes)
	}
	if r.Runs > 0 {
		fmt.Fprintf(w, "latency over %d runs: median %.2f ms, min %.2f ms\n", r.Runs, r.MedianMS, r.MinMS)
	}
}

func humanBytes(b int64) string { return cluster.Bytes(b).String() }

// printNodeTimes prints the time per operator type, then the slowest nodes.
func printNodeTimes(w io.Writer, nodes []nodeTime) {
	type opTotal struct {
		op    string
		count int
		ms    float64
	}
	var total float64
	byOp := map[string]*opTotal{}
	var totals []*opTotal
	for _, n := range nodes {
		total += n.MS
		a := byOp[n.Op]
		if a == nil {
			a = &opTotal{op: n.Op}
			byOp[n.Op] = a
			totals = append(totals, a)
		}
		a.count++
		a.ms += n.MS
	}
	sort.SliceStable(totals, func(i, j int) bool { return totals[i].ms > totals[j].ms })
	fmt.Fprintf(w, "time per operator (fastest of the runs, sum %.2f ms):\n", total)
	for _, a := range totals {
		fmt.Fprintf(w, "  %-22s %4d nodes %9.3f ms %5.1f%%\n", a.op, a.count, a.ms, 100*a.ms/total)
	}
	idx := make([]int, len(nodes))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return nodes[idx[a]].MS > nodes[idx[b]].MS })
	show := min(len(idx), 15)
	fmt.Fprintf(w, "slowest %d nodes:\n", show)
	for _, i := range idx[:show] {
		n := nodes[i]
		rate := ""
		if n.GFLOPS > 0 {
			rate = fmt.Sprintf("%7.1f GFLOP/s", n.GFLOPS)
		}
		fmt.Fprintf(w, "  %-32s %-18s %-18v %8.3f ms %s\n", n.Name, n.Op, n.Shape, n.MS, rate)
	}
}
