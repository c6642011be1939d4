package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/tensor"
)

type nodeRow struct {
	Name        string       `json:"name"`
	Op          string       `json:"op"`
	Fused       string       `json:"fused_activation,omitempty"`
	Shape       tensor.Shape `json:"output_shape"`
	FLOPs       int64        `json:"flops"`
	ParamBytes  int64        `json:"param_bytes"`
	OutputBytes int64        `json:"output_bytes"`
}

func newInspectCmd() *cobra.Command {
	var asJSON, noFuse bool
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Per-node table: operator, output shape, FLOPs, parameters, activation bytes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := loadModel(args[0])
			if err != nil {
				return err
			}
			if err := passes.Optimize(g, nil, passes.Options{NoFuse: noFuse}); err != nil {
				return err
			}
			var rows []nodeRow
			var tf, tp, ta int64
			for _, n := range g.Nodes {
				r := nodeRow{Name: n.Name, Op: n.Op, Fused: n.Str("iop.activation", ""),
					FLOPs: ops.NodeFLOPs(g, n), ParamBytes: ops.NodeParamBytes(g, n), OutputBytes: ops.NodeOutputBytes(g, n)}
				if len(n.Outputs) > 0 {
					r.Shape = g.Values[n.Outputs[0]].Shape
				}
				tf += r.FLOPs
				tp += r.ParamBytes
				ta += r.OutputBytes
				rows = append(rows, r)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
					"model": args[0], "nodes": rows, "total_flops": tf, "total_param_bytes": tp, "total_activation_bytes": ta,
				})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(w, "#\tnode\top\toutput\tMFLOPs\tparams\tactivations\t")
			for i, r := range rows {
				op := r.Op
				if r.Fused != "" {
					op += "+" + r.Fused
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%v\t%.1f\t%s\t%s\t\n", i, r.Name, op, r.Shape, float64(r.FLOPs)/1e6, humanBytes(r.ParamBytes), humanBytes(r.OutputBytes))
			}
			fmt.Fprintf(w, "\ttotal\t%d nodes\t\t%.1f\t%s\t%s\t\n", len(rows), float64(tf)/1e6, humanBytes(tp), humanBytes(ta))
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&noFuse, "no-fuse", false, "show BatchNormalization and activations as separate nodes")
	return cmd
}
