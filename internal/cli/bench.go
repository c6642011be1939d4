package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iop-edge/iop/internal/engine"
	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/ortref"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/zoo"
)

type benchRow struct {
	Model      string  `json:"model"`
	Threads    int     `json:"threads"`
	OursMedian float64 `json:"ours_median_ms"`
	OursMin    float64 `json:"ours_min_ms"`
	ORTMedian  float64 `json:"ort_median_ms,omitempty"`
	ORTMin     float64 `json:"ort_min_ms,omitempty"`
	Ratio      float64 `json:"ratio_median,omitempty"`
	RatioMin   float64 `json:"ratio_min,omitempty"`
}

func newBenchCmd() *cobra.Command {
	var (
		threadList string
		runs       int
		withORT    bool
		asJSON     bool
		markdown   bool
	)
	cmd := &cobra.Command{
		Use:   "bench [MODEL ...]",
		Short: "Single-device latency, optionally against ONNX Runtime on the same .onnx file",
		Long: `Measures batch-1 latency of each MODEL (default: resnet18 vgg16 mobilenetv2
alexnet) at each thread count. Zoo models are exported to ONNX and loaded
back, so with --ort both engines run the very same file in the same process
run; the ratio is ours / ONNX Runtime (below 1 is faster).

--ort needs ONNX Runtime from tools/ort in the source tree:
  (cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"resnet18", "vgg16", "mobilenetv2", "alexnet"}
			}
			var threads []int
			for _, s := range strings.Split(threadList, ",") {
				t, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || t < 1 {
					return usageError{fmt.Errorf("--threads: %q is not a thread count", s)}
				}
				threads = append(threads, t)
			}
			if withORT {
				if err := ortref.Available(); err != nil {
					return err
				}
			}
			dir, err := os.MkdirTemp("", "iop-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			var rows []benchRow
			for _, m := range args {
				path, x, err := benchModel(m, dir)
				if err != nil {
					return err
				}
				g, err := onnx.LoadFile(path)
				if err != nil {
					return err
				}
				for _, t := range threads {
					row := benchRow{Model: m, Threads: t}
					sess, err := engine.New(g, engine.Options{Threads: t})
					if err != nil {
						return err
					}
					lat, err := benchmark(sess, []*tensor.Tensor{x}, runs)
					sess.Close()
					if err != nil {
						return err
					}
					row.OursMedian, row.OursMin = median(lat), lat[0]
					if withORT {
						r, err := ortref.Bench(context.Background(), path, []*tensor.Tensor{x}, t, 2, runs)
						if err != nil {
							return err
						}
						row.ORTMedian, row.ORTMin = r.MedianMS, r.MinMS
						row.Ratio, row.RatioMin = row.OursMedian/r.MedianMS, row.OursMin/r.MinMS
					}
					rows = append(rows, row)
					runtime.GC()
				}
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rows)
			}
			printBench(cmd.OutOrStdout(), rows, withORT, markdown)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&threadList, "threads", "1,2", "comma-separated thread counts")
	f.IntVar(&runs, "runs", 10, "timed runs per measurement (after warm-up)")
	f.BoolVar(&withORT, "ort", false, "also run ONNX Runtime on the same .onnx file")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&markdown, "markdown", false, "print a Markdown table")
	return cmd
}

// benchModel returns an .onnx path for MODEL (exporting zoo models) and an
// input for it.
func benchModel(m, dir string) (string, *tensor.Tensor, error) {
	if isZooName(m) {
		g, err := zoo.Build(m)
		if err != nil {
			return "", nil, err
		}
		path := filepath.Join(dir, m+".onnx")
		if err := onnx.SaveFile(g, path); err != nil {
			return "", nil, err
		}
		return path, zoo.Input(m, 1), nil
	}
	g, err := onnx.LoadFile(m)
	if err != nil {
		return "", nil, err
	}
	if len(g.Inputs) != 1 || g.Inputs[0].DType != tensor.Float32 {
		return "", nil, fmt.Errorf("%s: bench needs a model with one float input", m)
	}
	shape := g.Inputs[0].Shape.Clone()
	for i := range shape {
		if shape[i] < 0 {
			shape[i] = 1
		}
	}
	x := tensor.New(tensor.Float32, shape)
	for i := range x.F {
		x.F[i] = float32(i%251)/125 - 1
	}
	return m, x, nil
}

func printBench(w io.Writer, rows []benchRow, withORT, markdown bool) {
	if markdown {
		if withORT {
			fmt.Fprintln(w, "| model | threads | iop median ms | iop min ms | ORT median ms | ORT min ms | ratio (median) | ratio (min) |")
			fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
			for _, r := range rows {
				fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |\n", r.Model, r.Threads, r.OursMedian, r.OursMin, r.ORTMedian, r.ORTMin, r.Ratio, r.RatioMin)
			}
			return
		}
		fmt.Fprintln(w, "| model | threads | iop median ms | iop min ms |")
		fmt.Fprintln(w, "|---|---:|---:|---:|")
		for _, r := range rows {
			fmt.Fprintf(w, "| %s | %d | %.1f | %.1f |\n", r.Model, r.Threads, r.OursMedian, r.OursMin)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if withORT {
		fmt.Fprintln(tw, "model\tthreads\tiop median\tiop min\tORT median\tORT min\tratio\tratio(min)\t")
	} else {
		fmt.Fprintln(tw, "model\tthreads\tiop median\tiop min\t")
	}
	for _, r := range rows {
		if withORT {
			fmt.Fprintf(tw, "%s\t%d\t%.1f ms\t%.1f ms\t%.1f ms\t%.1f ms\t%.2f\t%.2f\t\n", r.Model, r.Threads, r.OursMedian, r.OursMin, r.ORTMedian, r.ORTMin, r.Ratio, r.RatioMin)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%.1f ms\t%.1f ms\t\n", r.Model, r.Threads, r.OursMedian, r.OursMin)
		}
	}
	tw.Flush()
}
