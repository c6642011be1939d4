// Package cli implements the iop command line: one file per verb, each a
// thin layer over the library packages.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Main runs the command line with args and returns the process exit code.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) (code int) {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "iop: internal error: %v\n", r)
			slog.Debug("panic", "stack", string(debug.Stack()))
			code = 2
		}
	}()
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "iop: %s\n", oneLine(err))
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks errors in how the command was called.
type usageError struct{ error }

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:   "iop",
		Short: "Cooperative CNN inference across edge devices (Interleaved Operator Partitioning)",
		Long: `iop runs a convolutional network across several small devices, each holding a
slice of the model, or on one device. MODEL is an .onnx file or a zoo name
(see 'iop zoo list').`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level: %v", err)}
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	root.AddCommand(newInferCmd(), newInspectCmd(), newZooCmd(), newPlanCmd(), newBenchCmd(), newTestbedCmd(), newWorkerCmd(), newRunCmd(), newProfileCmd())
	return root
}
