package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/testbed"
)

func newTestbedCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "testbed",
		Short: "Emulate edge devices on this Linux machine (namespaces, tc tbf, cgroups; needs root)",
		Long: `testbed brings up one network namespace per emulated device, joined through a
bridge in its own namespace, with each device's link rate enforced by tc tbf
on both ends of its veth, and a cgroup v1 CPU quota and memory limit per
device. Per-message latency is recorded but not applied by the kernel (no
netem): workers and the cost model add it.`,
	}
	cmd.AddCommand(newTestbedUpCmd(), newTestbedDownCmd(), newTestbedStatusCmd(), newTestbedExecCmd(), newTestbedMeasureCmd())
	return cmd
}

func newTestbedUpCmd() *cobra.Command {
	var (
		devices                  int
		bandwidth, cpuQuota, mem string
		latency                  float64
		prefix, writeCluster     string
		subnet, port, mtu        int
		noHostLink               bool
		cpuPeriod                time.Duration
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring up emulated devices",
		Example: `  iop testbed up --devices 3 --bandwidth 100Mbps --cpu-quota 1 --memory 1GiB
  iop testbed up --devices 3 --bandwidth 50Mbps --cpu-quota 1,0.5,0.25 --prefix hetero`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := testbed.Config{Devices: devices, LatencyMS: latency, Prefix: prefix, Subnet: subnet, HostLink: !noHostLink, CPUPeriod: cpuPeriod, MTU: mtu}
			bws, err := parseList(bandwidth, devices, func(s string) (float64, error) {
				if s == "0" || s == "none" {
					return 0, nil
				}
				return cluster.ParseBandwidth(s)
			})
			if err != nil {
				return usageError{fmt.Errorf("--bandwidth: %w", err)}
			}
			quotas, err := parseList(cpuQuota, devices, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
			if err != nil {
				return usageError{fmt.Errorf("--cpu-quota: %w", err)}
			}
			mems, err := parseList(mem, devices, func(s string) (float64, error) {
				v, err := cluster.ParseBytes(s)
				return float64(v), err
			})
			if err != nil {
				return usageError{fmt.Errorf("--memory: %w", err)}
			}
			c.PerDevice = make([]testbed.Limits, devices)
			for i := range c.PerDevice {
				c.PerDevice[i] = testbed.Limits{Bandwidth: bws[i], CPUQuota: quotas[i], Memory: int64(mems[i])}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			b, err := testbed.Up(ctx, c)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			printBed(out, b)
			fmt.Fprintf(out, "\nStart the workers inside the devices (network namespace and cgroup limits):\n")
			for _, d := range b.Devices {
				fmt.Fprintf(out, "  iop testbed exec --prefix %s %s -- iop worker --listen %s:%d --name %s\n", b.Prefix(), d.Name, d.Addr, port, d.Name)
			}
			fmt.Fprintf(out, "or in a device's network namespace only (no CPU/memory limits):\n")
			fmt.Fprintf(out, "  ip netns exec %s iop worker --listen %s:%d\n", b.Devices[0].Namespace, b.Devices[0].Addr, port)
			if b.HostAddr != "" {
				fmt.Fprintf(out, "The host reaches the devices from %s (interface %s).\n", b.HostAddr, b.HostIface)
			}
			fmt.Fprintf(out, "Tear down: iop testbed down --prefix %s\n", b.Prefix())
			if writeCluster != "" {
				s := bedSpec(b, port)
				if err := s.Save(writeCluster); err != nil {
					return err
				}
				fmt.Fprintf(out, "Wrote %s (device speeds are placeholders: measure them with `iop profile --cluster %s -o %s`).\n", writeCluster, writeCluster, writeCluster)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&devices, "devices", 3, "number of devices")
	f.StringVar(&bandwidth, "bandwidth", "100Mbps", "link rate of each device, e.g. 100Mbps, 12.5MB/s, 0 for unshaped; a comma list gives one per device")
	f.Float64Var(&latency, "latency", 0, "per-message latency in ms (recorded for workers and the cost model; the kernel does not apply it)")
	f.StringVar(&cpuQuota, "cpu-quota", "0", "CPU quota as a fraction of one core (0: none); a comma list gives one per device")
	f.DurationVar(&cpuPeriod, "cpu-period", 0, "CFS period of the CPU quotas (0: 5ms, or 1ms/quota when longer, so a device runs steadily slower rather than in stalled bursts)")
	f.IntVar(&mtu, "mtu", testbed.DefaultMTU, "MTU of the links (jumbo frames by default: at 1500 bytes the shaping's per-packet interrupts cost the host's CPUs about 16 ns per byte, billed to whichever device is running)")
	f.StringVar(&mem, "memory", "0", "memory limit, e.g. 512MiB (0: none); a comma list gives one per device")
	f.StringVar(&prefix, "prefix", testbed.DefaultPrefix, "name prefix (lower-case letters and digits) so several beds can coexist")
	f.IntVar(&subnet, "subnet", 0, "use 10.N.0.0/24 (0: pick a free one)")
	f.BoolVar(&noHostLink, "no-host-link", false, "do not connect the host to the bridge (then run everything inside device namespaces)")
	f.StringVar(&writeCluster, "write-cluster", "", "also write a cluster spec YAML with the devices' addresses")
	f.IntVar(&port, "port", 7070, "worker port used in the printed commands and the written spec")
	return cmd
}

// parseList parses one value or a comma list of n values.
func parseList(s string, n int, parse func(string) (float64, error)) ([]float64, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 1 && len(parts) != n {
		return nil, fmt.Errorf("%d values for %d devices", len(parts), n)
	}
	out := make([]float64, max(n, 0))
	for i := range out {
		p := strings.TrimSpace(parts[min(i, len(parts)-1)])
		v, err := parse(p)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// bedSpec is a cluster spec for a bed's devices, with placeholder speeds
// (`iop profile` measures real ones). A transfer between two devices runs at
// the slower of their links; pairs that differ from the common rate get a
// link override.
func bedSpec(b *testbed.Bed, port int) *cluster.Spec {
	const unshaped = 1e9 / 8 // a gigabit LAN stands in for "unshaped"
	pair := func(i, j int) float64 {
		r := minPositive(b.Devices[i].Bandwidth, b.Devices[j].Bandwidth)
		if r <= 0 {
			r = unshaped
		}
		return r
	}
	base := b.Config.Bandwidth
	if base <= 0 {
		base = unshaped
		if len(b.Devices) > 1 {
			base = pair(0, 1)
		}
	}
	s := &cluster.Spec{Link: cluster.Link{Bandwidth: cluster.Bandwidth(base), LatencyMS: b.Config.LatencyMS}, Topology: cluster.Switched}
	for _, d := range b.Devices {
		s.Devices = append(s.Devices, cluster.Device{
			Name:    d.Name,
			Address: fmt.Sprintf("%s:%d", d.Addr, port),
			GFLOPS:  cluster.DefaultGFLOPS,
			Memory:  cluster.Bytes(d.Memory),
		})
	}
	for i := range b.Devices {
		for j := i + 1; j < len(b.Devices); j++ {
			if r := pair(i, j); r != base {
				s.Links = append(s.Links, cluster.LinkOverride{A: b.Devices[i].Name, B: b.Devices[j].Name,
					Link: cluster.Link{Bandwidth: cluster.Bandwidth(r), LatencyMS: b.Config.LatencyMS}})
			}
		}
	}
	return s
}

func printBed(out io.Writer, b *testbed.Bed) {
	fmt.Fprintf(out, "testbed %s: %d devices on %s (bridge namespace %s)", b.Prefix(), len(b.Devices), b.Subnet, b.Bridge)
	if b.Config.LatencyMS > 0 {
		fmt.Fprintf(out, ", latency %g ms (not applied by the kernel)", b.Config.LatencyMS)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tNAMESPACE\tADDRESS\tLINK\tCPU\tMEMORY")
	for _, d := range b.Devices {
		link, cpu, mem := "unshaped", "unlimited", "unlimited"
		if d.Bandwidth > 0 {
			link = cluster.Bandwidth(d.Bandwidth).String()
		}
		if d.CPUQuota > 0 {
			cpu = fmt.Sprintf("%g core / %gms", d.CPUQuota, float64(d.CPUPeriodUS)/1000)
		}
		if d.Memory > 0 {
			mem = bedBytes(d.Memory)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Namespace, d.Addr, link, cpu, mem)
	}
	tw.Flush()
}

func bedBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dB", n)
}

func newTestbedDownCmd() *cobra.Command {
	var prefix string
	var all bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove emulated devices (kills their processes), also leftovers of a crashed run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			prefixes := []string{prefix}
			if all {
				beds, err := testbed.List()
				if err != nil {
					return err
				}
				prefixes = prefixes[:0]
				for _, b := range beds {
					prefixes = append(prefixes, b.Prefix())
				}
			}
			var errs []error
			for _, p := range prefixes {
				left := testbed.Leftovers(p)
				if len(left) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "testbed %s: nothing to remove\n", p)
					continue
				}
				if err := testbed.Cleanup(p); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "testbed %s: removed %d namespaces, cgroups and state\n", p, countPrefix(left, "iop-"+p+"-"))
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", testbed.DefaultPrefix, "prefix of the bed to remove")
	cmd.Flags().BoolVar(&all, "all", false, "remove every bed with a state file")
	return cmd
}

func countPrefix(names []string, p string) int {
	n := 0
	for _, s := range names {
		if strings.HasPrefix(s, p) {
			n++
		}
	}
	return n
}

func newTestbedStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List the beds that are up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if err := testbed.Available(); err != nil {
				fmt.Fprintf(out, "testbed unavailable here: %v\n(fallback: loopback plus the in-process shaper)\n", err)
			}
			beds, err := testbed.List()
			if err != nil {
				return err
			}
			if len(beds) == 0 {
				fmt.Fprintln(out, "no testbed is up")
			}
			for i, b := range beds {
				if i > 0 {
					fmt.Fprintln(out)
				}
				printBed(out, b)
				for _, d := range b.Devices {
					if _, err := os.Stat("/run/netns/" + d.Namespace); err != nil {
						fmt.Fprintf(out, "warning: namespace %s is missing\n", d.Namespace)
					}
				}
			}
			return nil
		},
	}
}

func newTestbedExecCmd() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "exec DEVICE -- COMMAND [ARGS...]",
		Short: "Run a command inside a device (its network namespace and cgroups)",
		Example: `  iop testbed exec dev0 -- iop worker --listen 10.201.0.1:7000
  iop testbed exec --prefix hetero dev2 -- sh`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := testbed.Load(prefix)
			if err != nil {
				return err
			}
			i := -1
			for k, d := range b.Devices {
				if d.Name == args[0] || strconv.Itoa(k) == args[0] {
					i = k
				}
			}
			if i < 0 {
				return usageError{fmt.Errorf("testbed %s has no device %q", prefix, args[0])}
			}
			c := b.Command(i, args[1], args[2:]...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			err = c.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return fmt.Errorf("%s in %s: %w", args[1], b.Devices[i].Name, err)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", testbed.DefaultPrefix, "prefix of the bed")
	return cmd
}

func newTestbedMeasureCmd() *cobra.Command {
	var prefix string
	var seconds float64
	cmd := &cobra.Command{
		Use:   "measure [FROM TO]",
		Short: "Measure TCP goodput between devices (default: dev0→dev1 and dev1→dev0)",
		Args:  cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := testbed.Load(prefix)
			if err != nil {
				return err
			}
			if len(b.Devices) < 2 {
				return fmt.Errorf("testbed %s has one device", prefix)
			}
			pairs := [][2]int{{0, 1}, {1, 0}}
			if len(args) == 2 {
				var p [2]int
				for k, a := range args {
					p[k] = -1
					for i, d := range b.Devices {
						if d.Name == a || strconv.Itoa(i) == a {
							p[k] = i
						}
					}
					if p[k] < 0 {
						return usageError{fmt.Errorf("no device %q", a)}
					}
				}
				pairs = [][2]int{p}
			} else if len(args) == 1 {
				return usageError{errors.New("give FROM and TO, or neither")}
			}
			out := cmd.OutOrStdout()
			for _, p := range pairs {
				ctx, cancel := context.WithTimeout(cmd.Context(), time.Duration(seconds*float64(time.Second))+30*time.Second)
				r, err := b.MeasureBandwidth(ctx, p[0], p[1], time.Duration(seconds*float64(time.Second)))
				cancel()
				if err != nil {
					return err
				}
				from, to := b.Devices[p[0]], b.Devices[p[1]]
				fmt.Fprintf(out, "%s → %s: %.1f Mbit/s TCP goodput", from.Name, to.Name, r*8/1e6)
				if lim := minPositive(from.Bandwidth, to.Bandwidth); lim > 0 {
					fmt.Fprintf(out, " (%.1f %% of the %.0f Mbit/s tbf rate)", 100*r/lim, lim*8/1e6)
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "emulation: %s\n", b.Emulation())
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", testbed.DefaultPrefix, "prefix of the bed")
	cmd.Flags().Float64Var(&seconds, "seconds", 2, "how long each measurement streams")
	return cmd
}

func minPositive(a, b float64) float64 {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}
