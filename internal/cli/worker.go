package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/transport"
	"github.com/iop-edge/iop/internal/worker"
)

// tlsFlags are the mutual-TLS file flags of `iop worker` and `iop run`.
type tlsFlags struct{ files transport.TLSFiles }

func (t *tlsFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.files.CA, "tls-ca", "", "cluster CA certificate (PEM); with --tls-cert and --tls-key enables mutual TLS")
	f.StringVar(&t.files.Cert, "tls-cert", "", "this party's certificate (PEM, signed by the cluster CA)")
	f.StringVar(&t.files.Key, "tls-key", "", "this party's private key (PEM)")
}

func newWorkerCmd() *cobra.Command {
	var (
		listen   string
		name     string
		memLimit string
		threads  int
		fault    string
		maxFrame int
		gcPct    int
		cpuProf  string
		steady   bool
		tf       tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "worker --listen ADDR [--name NAME] [--memory-limit BYTES]",
		Short: "Run a device's worker daemon (one per device)",
		Long: `Runs the worker of one device. A coordinator ('iop run') connects to it,
streams it its program and only its own weight shards, and sends requests;
the workers exchange activations with each other directly over a full mesh
of TCP connections (mutual TLS with --tls-ca/--tls-cert/--tls-key).

The worker prints "listening on ADDR" once it accepts connections and stops
cleanly on SIGTERM or SIGINT. With --memory-limit a deployment whose weight
shard and activations do not fit is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var lim int64
			if memLimit != "" {
				v, err := cluster.ParseBytes(memLimit)
				if err != nil {
					return usageError{fmt.Errorf("--memory-limit: %w", err)}
				}
				lim = v
			}
			if fault != "" && !slices.Contains(worker.Faults, fault) {
				return usageError{fmt.Errorf("--fault %q: want one of %v", fault, worker.Faults)}
			}
			if steady {
				// Returns only if GODEBUG already sets schedtrace (or the
				// exec failed: then run as is).
				if err := worker.SteadySysmon(); err != nil {
					slog.Warn("running with the Go runtime's default sysmon", "err", err)
				}
			}
			opt := worker.Options{Name: name, MemoryLimit: lim, Threads: threads, Fault: fault, GCPercent: gcPct,
				Limits: transport.Limits{MaxFrame: maxFrame}}
			if tf.files.Enabled() {
				cfg, err := tf.files.Config()
				if err != nil {
					return err
				}
				opt.TLS = cfg
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if cpuProf != "" {
				stopProf, err := startCPUProfile(cpuProf)
				if err != nil {
					return err
				}
				defer stopProf()
			}
			srv := worker.New(ln, opt)
			fmt.Fprintf(cmd.OutOrStdout(), "listening on %s\n", ln.Addr())
			slog.Info("worker started", "name", name, "addr", ln.Addr().String(), "memory_limit", lim, "tls", opt.TLS != nil)
			err = srv.Serve(ctx)
			slog.Info("worker stopped", "name", name)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":7070", "address to listen on (host:port; port 0 picks one)")
	f.StringVar(&name, "name", "", "device name for messages (default: the listen address)")
	f.StringVar(&memLimit, "memory-limit", "", "refuse deployments that need more memory than this (e.g. 512MiB)")
	f.IntVar(&threads, "threads", 0, "kernel threads (0: as the coordinator says, else all cores)")
	f.IntVar(&maxFrame, "max-frame", transport.DefaultMaxFrame, "largest frame payload accepted, in bytes")
	f.IntVar(&gcPct, "gc-percent", worker.DefaultGCPercent, "garbage collector target (GOGC) of the worker process")
	f.BoolVar(&steady, "steady-sysmon", true, "re-execute once with GODEBUG="+worker.SteadySysmonSetting+": the Go runtime's monitor thread then polls every 10 ms instead of every 20 µs after each idle spell, preempting the kernels far less (an existing GODEBUG schedtrace setting is kept)")
	f.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile (go tool pprof) of the worker's life to this file, and its allocations to FILE.allocs")
	f.StringVar(&fault, "fault", "", "inject a fault for testing: "+fmt.Sprint(worker.Faults))
	f.MarkHidden("fault")
	tf.register(cmd)
	cmd.AddCommand(newCertsCmd())
	return cmd
}

func newCertsCmd() *cobra.Command {
	var valid time.Duration
	cmd := &cobra.Command{
		Use:   "certs DIR NAME...",
		Short: "Generate a cluster CA and a certificate per device (and coordinator) for mutual TLS",
		Long: `Writes DIR/ca.pem and, for each NAME, DIR/NAME.pem and DIR/NAME-key.pem
(ECDSA P-256, signed by a fresh cluster CA). Give each worker its files with
--tls-ca DIR/ca.pem --tls-cert DIR/NAME.pem --tls-key DIR/NAME-key.pem, and
'iop run' the coordinator's. Keep the CA key out of the picture: it is not
written, so adding a device later means generating a new set.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := transport.GenerateCerts(args[0], args[1:], valid)
			if err != nil {
				return err
			}
			for _, n := range args[1:] {
				f := files[n]
				fmt.Fprintf(cmd.OutOrStdout(), "%s: --tls-ca %s --tls-cert %s --tls-key %s\n", n, f.CA, f.Cert, f.Key)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&valid, "valid", 365*24*time.Hour, "validity of the certificates")
	return cmd
}

// startCPUProfile starts a pprof CPU profile into path; the returned func
// stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			slog.Warn("cpu profile", "file", path, "err", err)
		}
		// And where the worker allocated (go tool pprof -sample_index=alloc_space).
		a, err := os.Create(path + ".allocs")
		if err == nil {
			err = pprof.Lookup("allocs").WriteTo(a, 0)
			if cerr := a.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			slog.Warn("allocation profile", "file", path+".allocs", "err", err)
		}
	}, nil
}
