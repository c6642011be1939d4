// Package testbed emulates a room of edge devices on one Linux machine: one
// network namespace per device, each joined by a veth pair to a bridge that
// lives in its own namespace (the "switch"), the device's link rate enforced
// by `tc ... tbf` on both ends of its veth, and a cgroup (v1) per device with
// a CPU quota (a slower board) and a memory limit (a plan that does not fit
// is killed, as it would be on the board).
//
// Real processes, real TCP, real kernel shaping. It needs root, iproute2
// (`ip`, `tc`) and cgroup v1 mounts at /sys/fs/cgroup/cpu and
// /sys/fs/cgroup/memory; Available says whether they are there. Elsewhere
// use loopback plus internal/shaper with the same parameters, and say which
// emulation produced a number.
//
// Per-message latency is not applied by the kernel (the netem qdisc is not
// available on the target machines); Config.LatencyMS is recorded so that
// workers and the cost model can add it.
//
// Names: the bridge namespace is "iop-<prefix>-br", device i's namespace
// "iop-<prefix>-dev<i>", its cgroups "iop-<prefix>/dev<i>" under the cpu and
// memory hierarchies. A state file /run/iop-testbed/<prefix>.json records a
// bed so another process (`iop testbed down`) can find it; Cleanup(prefix)
// also finds leftovers by name alone, e.g. after a crash.
package testbed

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// ErrNotLinux is returned on operating systems other than Linux.
var ErrNotLinux = errors.New("testbed needs Linux (network namespaces, tc, cgroup v1)")

// StateDir holds one JSON file per bed that is up.
const StateDir = "/run/iop-testbed"

// DefaultPrefix is the prefix used when Config.Prefix is empty.
const DefaultPrefix = "tb"

// DefaultCPUPeriod is the CFS period used for a CPU quota when the Config
// gives none: 5 ms, or longer when the quota per period would fall below
// the kernel's 1 ms minimum. Measured on the validation testbed
// (docs/VALIDATION.md): with the kernel's usual 100 ms a 0.45-core device
// ran a 20 ms request in 20 or 80 ms depending on where the stall fell;
// with 2.2 ms (the 1 ms minimum quota) single-device runs were 1.1–1.65×
// slower than the profiled speed, with 5 ms 1.0–1.45× and with 10 ms
// 1.1–1.45×.
func DefaultCPUPeriod(quota float64) time.Duration {
	p := 5 * time.Millisecond
	if quota > 0 && quota < 0.2 {
		p = time.Duration(float64(time.Millisecond)/quota) + 1
	}
	return min(p, time.Second)
}

// DefaultMTU is the links' MTU when the Config gives none: jumbo frames.
// A tbf that holds a backlog sends one packet per token refill, each a
// timer interrupt and a softirq carrying it through the bridge and the
// receiver's TCP stack, billed by the kernel to whichever thread happens
// to be running on that CPU (this kernel has no IRQ time accounting) —
// usually another emulated device's. On the validation VMs that cost
// about 16 ns of CPU per byte at 1500-byte frames (25 µs per packet,
// spread over the devices at random: a compute step of one device took
// up to 3× its CPU while a peer's bytes flowed) and about 1 ns per byte
// at 9000 (docs/VALIDATION.md, session 9). The shaped rate is the same.
const DefaultMTU = 9000

// Limits are one device's emulated resources. Zero values mean "none" in
// Config and "inherit Config's value" in Config.PerDevice.
type Limits struct {
	// Bandwidth is the device's link rate in bytes per second, enforced by
	// tbf in both directions (0: unshaped). tbf counts Ethernet frames, so
	// TCP goodput is the rate less the headers, as on a real link (about
	// 99 % at DefaultMTU, 95 % at 1500 bytes).
	Bandwidth float64 `json:"bandwidth,omitempty"`
	// CPUQuota is the CPU time per wall-clock time, as a fraction of one
	// core (0.5: half a core; 2: two cores; 0: unlimited).
	CPUQuota float64 `json:"cpu_quota,omitempty"`
	// Memory is the memory limit in bytes (0: unlimited).
	Memory int64 `json:"memory,omitempty"`
}

// Config describes a bed to bring up.
type Config struct {
	// Devices is the number of devices (1–200).
	Devices int `json:"devices"`
	Limits
	// CPUPeriod is the CFS period of the CPU quotas (0: DefaultCPUPeriod
	// of each device's quota). A worker may use quota × period of CPU time
	// per period and then waits for the next one: a long period makes a
	// full-speed device that stalls, a short one a steadily slower device.
	CPUPeriod time.Duration `json:"cpu_period,omitempty"`
	// LatencyMS is the per-message latency to emulate. It is recorded,
	// not applied by the kernel (no netem): pass it to the shaper.
	LatencyMS float64 `json:"latency_ms,omitempty"`
	// PerDevice optionally overrides Limits for device i (zero fields
	// inherit).
	PerDevice []Limits `json:"per_device,omitempty"`
	// Prefix makes names unique so several beds can coexist: lower-case
	// letters and digits, at most 16 (empty: DefaultPrefix).
	Prefix string `json:"prefix"`
	// Subnet selects 10.<Subnet>.0.0/24 (1–254; 0: chosen from the prefix,
	// avoiding other beds and the host's routes).
	Subnet int `json:"subnet,omitempty"`
	// MTU of every link of the bed (0: DefaultMTU).
	MTU int `json:"mtu,omitempty"`
	// HostLink connects the root namespace to the bridge with address
	// 10.<Subnet>.0.254, so processes on the host (a coordinator, `iop
	// profile`) reach the devices. The host end is unshaped; traffic to a
	// device is still shaped by the device's own link.
	HostLink bool `json:"host_link,omitempty"`
}

// limits returns device i's effective limits.
func (c *Config) limits(i int) Limits {
	l := c.Limits
	if i < len(c.PerDevice) {
		o := c.PerDevice[i]
		if o.Bandwidth > 0 {
			l.Bandwidth = o.Bandwidth
		}
		if o.CPUQuota > 0 {
			l.CPUQuota = o.CPUQuota
		}
		if o.Memory > 0 {
			l.Memory = o.Memory
		}
	}
	return l
}

var prefixRE = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// CheckPrefix reports whether p can name a bed.
func CheckPrefix(p string) error {
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("testbed prefix %q: want 1–16 lower-case letters or digits", p)
	}
	return nil
}

func (c *Config) validate() error {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if err := CheckPrefix(c.Prefix); err != nil {
		return err
	}
	if c.Devices < 1 || c.Devices > 200 {
		return fmt.Errorf("testbed: %d devices, want 1–200", c.Devices)
	}
	if len(c.PerDevice) > c.Devices {
		return fmt.Errorf("testbed: %d per-device limits for %d devices", len(c.PerDevice), c.Devices)
	}
	if c.Subnet < 0 || c.Subnet > 254 {
		return fmt.Errorf("testbed: subnet %d, want 1–254", c.Subnet)
	}
	for i := 0; i < c.Devices; i++ {
		l := c.limits(i)
		if l.Bandwidth < 0 || l.CPUQuota < 0 || l.Memory < 0 {
			return fmt.Errorf("testbed: device %d: negative limit %+v", i, l)
		}
		if l.Bandwidth > 0 && l.Bandwidth < 1000 {
			return fmt.Errorf("testbed: device %d: bandwidth %g B/s is below 8 kbit/s", i, l.Bandwidth)
		}
		if l.CPUQuota > 0 && l.CPUQuota < 0.01 {
			return fmt.Errorf("testbed: device %d: CPU quota %g is below 1 %% of a core", i, l.CPUQuota)
		}
		if l.Memory > 0 && l.Memory < 4<<20 {
			return fmt.Errorf("testbed: device %d: memory limit %d B is below 4 MiB", i, l.Memory)
		}
	}
	if c.LatencyMS < 0 {
		return fmt.Errorf("testbed: negative latency")
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < 576 || c.MTU > 65535 {
		return fmt.Errorf("testbed: MTU %d, want 576–65535", c.MTU)
	}
	if c.CPUPeriod != 0 && (c.CPUPeriod < time.Millisecond || c.CPUPeriod > time.Second) {
		return fmt.Errorf("testbed: CPU period %v, want 1ms–1s", c.CPUPeriod)
	}
	return nil
}

// Device is one emulated device.
type Device struct {
	// Name is "dev<i>".
	Name string `json:"name"`
	// Namespace is the network namespace the device's processes run in.
	Namespace string `json:"namespace"`
	// Addr is the device's IPv4 address (no port).
	Addr string `json:"addr"`
	// Limits are the device's effective limits.
	Limits
	// CPUPeriodUS is the CFS period of the device's CPU quota in
	// microseconds (0 without a quota).
	CPUPeriodUS int64 `json:"cpu_period_us,omitempty"`
	// CPUCgroup and MemoryCgroup are the device's cgroup directories.
	CPUCgroup    string `json:"cpu_cgroup"`
	MemoryCgroup string `json:"memory_cgroup"`
}

// Bed is a running testbed.
type Bed struct {
	Config Config `json:"config"`
	// Bridge is the namespace holding the bridge (the switch).
	Bridge string `json:"bridge"`
	// Subnet is the devices' network, "10.<n>.0.0/24".
	Subnet string `json:"subnet"`
	// HostAddr is the host's address on the bridge ("" without HostLink).
	HostAddr string `json:"host_addr,omitempty"`
	// HostIface is the host end of the host link ("" without HostLink).
	HostIface string   `json:"host_iface,omitempty"`
	Devices   []Device `json:"devices"`
}

// Prefix is the bed's name prefix.
func (b *Bed) Prefix() string { return b.Config.Prefix }

// Emulation describes what produced measurements on this bed, for reports.
func (b *Bed) Emulation() string {
	return fmt.Sprintf("testbed %s: %d network namespaces, tc tbf link shaping (MTU %d), cgroup v1 CPU/memory limits; latency %g ms not applied by the kernel",
		b.Config.Prefix, len(b.Devices), b.Config.MTU, b.Config.LatencyMS)
}

// Sink reads r to EOF and returns the rate in bytes per second, counted
// from warmup after the first byte to the last.
func Sink(r io.Reader, warmup time.Duration) (float64, error) {
	buf := make([]byte, 256<<10)
	var first time.Time
	var counted int64
	var from time.Time
	last := time.Now()
	for {
		n, err := r.Read(buf)
		now := time.Now()
		if n > 0 {
			if first.IsZero() {
				first = now
			}
			if from.IsZero() && now.Sub(first) >= warmup {
				from = now
			} else if !from.IsZero() {
				counted += int64(n)
				last = now
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("testbed: receive: %w", err)
		}
	}
	if from.IsZero() || !last.After(from) {
		return 0, errors.New("testbed: stream too short to measure")
	}
	return float64(counted) / last.Sub(from).Seconds(), nil
}

// CPUWarning explains, or returns "", why devices with these limits on a
// host with cpus CPUs would not behave like separate machines. Under a CFS
// quota an idle device runs at a full core until its quota for the period
// is spent, so devices that start computing together (every partitioned
// step) briefly ask for a core each: when the quotas add up to more than
// half of the host's CPUs they crowd each other (and the coordinator and
// the kernel's network processing) off the CPUs, which no per-device model
// predicts. Measured (docs/VALIDATION.md): AlexNet `optimal` at n = 4 on 2
// CPUs ran 1.2–1.5× its prediction with 0.45-core quotas and 1.07× with
// 0.25.
func CPUWarning(c Config, cpus int) string {
	sum := 0.0
	for i := 0; i < c.Devices; i++ {
		q := c.limits(i).CPUQuota
		if q <= 0 || q > 1 {
			q = 1
		}
		sum += q
	}
	if cpus <= 0 || sum <= float64(cpus)/2+1e-9 {
		return ""
	}
	return fmt.Sprintf("the devices' CPU quotas (a core for a device without one) add up to %.2g cores on a host with %d CPUs: devices bursting at a full core "+
		"at once will crowd each other off the CPUs, so latencies will exceed per-device predictions; keep the sum at or below %.2g (half the CPUs)",
		sum, cpus, float64(cpus)/2)
}

// TBFBurst is the depth in bytes of the token bucket of the tbf shaping a
// link of rate bytes/s: max(64 KiB, 2 ms at the rate), enough for the timer
// granularity and GSO, small enough that goodput over a second is the rate.
// A link that idled passes that much at once (packet headers included);
// `iop profile` reports it (LinkResult.BurstBytes). A smaller bucket was
// tried: at 4 KiB, coedge and iop runs took 1.1–1.5× as long.
func TBFBurst(rate float64) float64 { return max(64<<10, rate*0.002) }
