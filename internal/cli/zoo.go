package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/zoo"
)

func newZooCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "zoo", Short: "Built-in models with deterministic weights"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the zoo models",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "name\tinput\tparams\tdescription")
			for _, m := range zoo.List() {
				fmt.Fprintf(w, "%s\t%v\t%.2fM\t%s\n", m.Name, m.InputShape, float64(m.Params)/1e6, m.Description)
			}
			return w.Flush()
		},
	})
	var out string
	export := &cobra.Command{
		Use:   "export NAME -o FILE.onnx",
		Short: "Write a zoo model as an ONNX file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("zoo export: -o FILE.onnx is required")}
			}
			g, err := zoo.Build(args[0])
			if err != nil {
				return err
			}
			return onnx.SaveFile(g, out)
		},
	}
	export.Flags().StringVarP(&out, "output", "o", "", "ONNX file to write")
	cmd.AddCommand(export)
	return cmd
}
