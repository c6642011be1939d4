package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/profile"
	"github.com/iop-edge/iop/internal/transport"
)

func newProfileCmd() *cobra.Command {
	var (
		clusterFile, out, report, name string
		model                          string
		layersBudget                   time.Duration
		local, skipOps, skipLinks      bool
		threads                        int
		budget                         time.Duration
		linkSeconds                    float64
		tf                             profileTLS
	)
	cmd := &cobra.Command{
		Use:   "profile (--cluster FILE | --local) [-o OUT.yaml]",
		Short: "Measure device speeds per operator class and link bandwidth/latency; write the cluster spec",
		Long: `profile measures what the planner's cost model needs: each device's speed in
GFLOP/s per operator class (conv, depthwise, gemm, pool, elementwise), run
through the engine's own operators on layers of ResNet, MobileNetV2 and VGG,
and each link's goodput (framed tensors, as the runtime sends them) and
per-message latency (half the median round trip).

With --cluster, every device's address must reach a process hosting the
profile protocol: an iop worker that hosts it, or 'iop profile agent'.
Devices are measured one at a time, links one pair at a time. With --local,
this machine is measured and a one-device spec is written.

With --model, each device also times the model's own distinct layers
(made-up weights of the real shapes, in model order, under the device's CPU
limits) and the spec records them under layer_ms: the planner then scales
its per-class estimate of each node by measured / estimated on that device.
The class model misses single layers (an 11×11 stride-4 convolution, a local
response normalization) by a factor of two or more.`,
		Example: `  iop profile --local -o here.yaml
  iop profile --cluster devices.yaml -o devices.yaml
  iop profile --cluster devices.yaml --model resnet18 -o devices.yaml   # also calibrate for ResNet-18
  iop testbed exec dev0 -- iop profile agent --listen 10.201.0.1:7000   # on each device, without workers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if local == (clusterFile != "") {
				return usageError{fmt.Errorf("give exactly one of --cluster FILE and --local")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			w := cmd.OutOrStdout()
			ops := profile.OpsRequest{Threads: threads, BudgetMS: budget.Milliseconds()}
			if local {
				spec, r, err := profile.Local(ctx, name, ops)
				if err != nil {
					return err
				}
				printOps(w, name, r)
				return writeSpec(w, spec, out, report, &profile.Report{Devices: []profile.DeviceReport{{Name: name, Info: profile.LocalInfo(name), Ops: r}}})
			}
			spec, err := cluster.Load(clusterFile)
			if err != nil {
				return err
			}
			d := profile.Dialer{}
			if tf.files.Enabled() {
				cfg, err := tf.files.Config()
				if err != nil {
					return err
				}
				d.TLS = cfg
			}
			opt := profile.ClusterOptions{
				Ops:       ops,
				Link:      profile.LinkRequest{Seconds: linkSeconds},
				Dialer:    d,
				SkipOps:   skipOps,
				SkipLinks: skipLinks,
				Layers:    profile.LayersRequest{Threads: threads, BudgetMS: layersBudget.Milliseconds()},
				Progress:  func(m string) { fmt.Fprintf(cmd.ErrOrStderr(), "measuring %s\n", m) },
			}
			if model != "" {
				if opt.Model, err = plannedGraph(model); err != nil {
					return err
				}
				opt.ModelKey = modelKey(model)
			}
			measured, rep, err := profile.Cluster(ctx, spec, opt)
			if err != nil {
				return err
			}
			for _, dr := range rep.Devices {
				if dr.Ops != nil {
					printOps(w, dr.Name, dr.Ops)
				}
			}
			if len(rep.Links) > 0 {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "LINK\tGOODPUT\tLATENCY\tRTT MIN/MEDIAN")
				for _, p := range rep.Links {
					fmt.Fprintf(tw, "%s → %s\t%.1f Mbit/s\t%.3f ms\t%.3f / %.3f ms\n", p.A, p.B,
						p.Link.Bandwidth*8/1e6, p.Link.LatencyMS, p.Link.MinRTTMS, p.Link.MedianRTTMS)
				}
				tw.Flush()
			}
			return writeSpec(w, measured, out, report, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&clusterFile, "cluster", "", "cluster spec YAML whose devices have addresses")
	f.BoolVar(&local, "local", false, "measure this machine only (no workers)")
	f.StringVarP(&out, "output", "o", "", "write the measured spec to this YAML file (default: print it)")
	f.StringVar(&report, "report", "", "also write every measurement as JSON")
	f.StringVar(&name, "name", "local", "--local: the device's name")
	f.IntVar(&threads, "threads", 0, "kernel threads on each device (0: the worker's default, GOMAXPROCS)")
	f.DurationVar(&budget, "budget", profile.DefaultBudget, "operator-speed measuring time per device")
	f.Float64Var(&linkSeconds, "link-seconds", 2, "streaming time per link")
	f.BoolVar(&skipOps, "skip-ops", false, "keep the spec's device speeds")
	f.BoolVar(&skipLinks, "skip-links", false, "keep the spec's links")
	f.StringVar(&model, "model", "", "--cluster: also time this model's own layers on every device (spec layer_ms; the planner's cost model is then calibrated for it)")
	f.DurationVar(&layersBudget, "layers-budget", profile.DefaultLayersBudget, "--model: layer measuring time per device")
	tf.register(cmd)
	cmd.AddCommand(newProfileAgentCmd())
	return cmd
}

func printOps(w io.Writer, name string, r *profile.OpsResult) {
	classes := make([]string, 0, len(r.ByClass))
	for c := range r.ByClass {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	fmt.Fprintf(w, "%s: %d threads, %s kernels, %.1f s:", name, r.Threads, r.Kernel, r.WallMS/1e3)
	for _, c := range classes {
		fmt.Fprintf(w, " %s %.3g", c, r.ByClass[c])
	}
	fmt.Fprintln(w, " GFLOP/s")
}

func writeSpec(w io.Writer, s *cluster.Spec, out, report string, rep *profile.Report) error {
	if report != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(report, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if out == "" {
		b, err := yaml.Marshal(s)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%s", b)
		return nil
	}
	if err := s.Save(out); err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %s\n", out)
	return nil
}

func newProfileAgentCmd() *cobra.Command {
	var listen, name string
	var tf profileTLS
	cmd := &cobra.Command{
		Use:   "agent --listen ADDR",
		Short: "Serve the profile protocol (for devices without a worker that hosts it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := profile.AgentOptions{Name: name}
			if tf.files.Enabled() {
				cfg, err := tf.files.Config()
				if err != nil {
					return err
				}
				opt.TLS, opt.Dialer.TLS = cfg, cfg
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			slog.Info("profile agent listening", "addr", ln.Addr().String())
			fmt.Fprintf(cmd.OutOrStdout(), "profile agent on %s\n", ln.Addr())
			return profile.Serve(ctx, ln, opt)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7000", "address to listen on")
	cmd.Flags().StringVar(&name, "name", "", "device name reported to iop profile")
	tf.register(cmd)
	return cmd
}

// profileTLS are the mutual-TLS flags of `iop profile` and its agent (the
// same names and files as the worker's).
type profileTLS struct{ files transport.TLSFiles }

func (t *profileTLS) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.files.CA, "tls-ca", "", "cluster CA certificate (PEM); with --tls-cert and --tls-key enables mutual TLS")
	f.StringVar(&t.files.Cert, "tls-cert", "", "this party's certificate (PEM, signed by the cluster CA)")
	f.StringVar(&t.files.Key, "tls-key", "", "this party's private key (PEM)")
}
