// Package cluster describes the devices a model runs on: their compute speed
// (optionally per operator class), memory limit and network address, and the
// links between them. A spec is read from YAML (written by hand or by
// `iop profile`) or built from command-line flags.
package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Topology says how devices share the network.
type Topology string

// Topologies.
const (
	// Switched: every device has its own full-duplex link to a switch.
	Switched Topology = "switched"
	// Shared: one medium for all devices (one Wi-Fi channel); transfers
	// serialize.
	Shared Topology = "shared"
)

// Defaults for a Raspberry-Pi-class board on a 100 Mbit/s LAN.
const (
	DefaultGFLOPS        = 4.0
	DefaultMemory        = 1 << 30
	DefaultBandwidthMbps = 100
	DefaultLatencyMS     = 0.2
)

// Device is one board.
type Device struct {
	Name    string `yaml:"name" json:"name"`
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// GFLOPS is the sustained speed for operator classes not in ByClass.
	GFLOPS float64 `yaml:"gflops" json:"gflops"`
	// ByClass overrides GFLOPS per operator class (conv, depthwise, gemm,
	// pool, elementwise, memory), as measured by `iop profile`.
	ByClass map[string]float64 `yaml:"gflops_by_class,omitempty" json:"gflops_by_class,omitempty"`
	// BytesPerSec, per operator class, adds a memory term to an operator's
	// time: time = FLOPs / speed + bytes touched / BytesPerSec[class]
	// (bytes of its inputs, weights included, and outputs). `iop profile`
	// fits both terms to layers of different arithmetic intensity; a class
	// without an entry costs FLOPs / speed only.
	BytesPerSec map[string]float64 `yaml:"bytes_per_sec_by_class,omitempty" json:"bytes_per_sec_by_class,omitempty"`
	// Memory is the memory limit in bytes (0: unlimited).
	Memory Bytes `yaml:"memory" json:"memory"`
	// CPUShare is the cores the device's worker gets (CPU time over wall
	// time while `iop profile` ran its kernels: 0.45 under a 0.45-core
	// quota; 0: unknown, taken as 1).
	CPUShare float64 `yaml:"cpu_share,omitempty" json:"cpu_share,omitempty"`
	// SendCPUNSPerByte and RecvCPUNSPerByte are the CPU time the worker
	// spends per byte it sends or receives over a device link (framing,
	// CRC, system calls, the network stack), measured by `iop profile`;
	// that CPU is taken from the device's compute (0: not modelled).
	SendCPUNSPerByte float64 `yaml:"send_cpu_ns_per_byte,omitempty" json:"send_cpu_ns_per_byte,omitempty"`
	RecvCPUNSPerByte float64 `yaml:"recv_cpu_ns_per_byte,omitempty" json:"recv_cpu_ns_per_byte,omitempty"`
	// MessageCPUMS is the CPU time the worker spends per message it sends
	// or receives beyond the per-byte cost (waking the goroutines that
	// hand it on, system calls, the mailbox), measured by `iop profile`
	// with small messages; taken from the device's compute like the
	// per-byte cost (0: not modelled).
	MessageCPUMS float64 `yaml:"message_cpu_ms,omitempty" json:"message_cpu_ms,omitempty"`
	// CPUQuota and CPUPeriodMS describe a CFS bandwidth limit on the
	// device's worker (a container's CPU limit, or the testbed's cgroup):
	// CPUQuota cores' worth of CPU time per period of CPUPeriodMS. The
	// worker then runs at full speed until a period's quota is spent and
	// stalls until the next period, rather than steadily at the quota; the
	// cost model simulates that (0: no such limit, the fluid share).
	CPUQuota    float64 `yaml:"cpu_quota,omitempty" json:"cpu_quota,omitempty"`
	CPUPeriodMS float64 `yaml:"cpu_period_ms,omitempty" json:"cpu_period_ms,omitempty"`
}

// CFS reports device d's CFS bandwidth limit: the quota as a fraction of
// the period, and the period in seconds (ok false without a limit that
// throttles, i.e. none or a quota of a core or more).
func (s *Spec) CFS(d int) (quota, period float64, ok bool) {
	dev := s.Devices[d]
	if dev.CPUQuota <= 0 || dev.CPUQuota >= 1 || dev.CPUPeriodMS <= 0 {
		return 0, 0, false
	}
	return dev.CPUQuota, dev.CPUPeriodMS / 1e3, true
}

// NetSecondsPerByte is the device time (CPU time over the CPU share)
// device d spends per byte sent and per byte received.
func (s *Spec) NetSecondsPerByte(d int) (send, recv float64) {
	dev := s.Devices[d]
	share := dev.CPUShare
	if share <= 0 {
		share = 1
	}
	return dev.SendCPUNSPerByte / 1e9 / share, dev.RecvCPUNSPerByte / 1e9 / share
}

// NetSecondsPerMessage is the device time device d spends per message it
// sends or receives, beyond its bytes.
func (s *Spec) NetSecondsPerMessage(d int) float64 {
	dev := s.Devices[d]
	share := dev.CPUShare
	if share <= 0 {
		share = 1
	}
	return dev.MessageCPUMS / 1e3 / share
}

// Link is a network link's bandwidth and per-message latency.
type Link struct {
	Bandwidth Bandwidth `yaml:"bandwidth" json:"bandwidth"`
	LatencyMS float64   `yaml:"latency_ms" json:"latency_ms"`
	// BurstBytes is what the link passes at once after it idled, beyond
	// its bandwidth: the depth of a rate limiter's token bucket (tc tbf
	// on the testbed, the shaper in process), which refills at the
	// bandwidth while the link carries less. 0: none (a wire).
	BurstBytes float64 `yaml:"burst_bytes,omitempty" json:"burst_bytes,omitempty"`
	// ShareSpread is how unevenly the connections a device keeps to
	// several peers share its link when they send at once: the standard
	// deviation of the logarithm of their shares (TCP connections through
	// one FIFO queue take unequal, changing shares; 0: max-min fair).
	ShareSpread float64 `yaml:"share_spread,omitempty" json:"share_spread,omitempty"`
}

// check reports what is wrong with a link's figures.
func (l Link) check() error {
	switch {
	case l.Bandwidth <= 0:
		return fmt.Errorf("bandwidth must be positive")
	case l.LatencyMS < 0:
		return fmt.Errorf("latency_ms must not be negative")
	case l.BurstBytes < 0:
		return fmt.Errorf("burst_bytes must not be negative")
	case l.ShareSpread < 0 || l.ShareSpread > 3:
		return fmt.Errorf("share_spread %g: want 0 (fair) to 3", l.ShareSpread)
	}
	return nil
}

// LinkOverride sets the link of one device pair (both directions).
type LinkOverride struct {
	A    string `yaml:"a" json:"a"`
	B    string `yaml:"b" json:"b"`
	Link `yaml:",inline" json:",inline"`
}

// Spec is a whole cluster.
type Spec struct {
	Devices  []Device       `yaml:"devices" json:"devices"`
	Link     Link           `yaml:"link" json:"link"`
	Links    []LinkOverride `yaml:"links,omitempty" json:"links,omitempty"`
	Topology Topology       `yaml:"topology" json:"topology"`
	// Coordinator is the link between the coordinator (which sends each
	// request's inputs and collects its outputs) and every device; nil
	// means Link, a coordinator on the same LAN. `iop profile` measures it
	// from where it runs.
	Coordinator *Link `yaml:"coordinator,omitempty" json:"coordinator,omitempty"`
	// LayerMS holds the measured time of a model's own layers on each
	// device (`iop profile --model`): model → device name → node name →
	// milliseconds. The cost model scales its per-class estimate of every
	// step computing such a node by measured / estimated.
	LayerMS map[string]map[string]map[string]float64 `yaml:"layer_ms,omitempty" json:"layer_ms,omitempty"`
}

// CoordinatorLink is the link between the coordinator and each device.
func (s *Spec) CoordinatorLink() Link {
	if s.Coordinator != nil {
		return *s.Coordinator
	}
	return s.Link
}

// Uniform returns n identical devices named dev0..dev{n-1}.
func Uniform(n int, gflops float64, memory int64, bw Bandwidth, latencyMS float64) *Spec {
	s := &Spec{Link: Link{Bandwidth: bw, LatencyMS: latencyMS}, Topology: Switched}
	for i := 0; i < n; i++ {
		s.Devices = append(s.Devices, Device{Name: fmt.Sprintf("dev%d", i), GFLOPS: gflops, Memory: Bytes(memory)})
	}
	return s
}

// Load reads a YAML cluster spec.
func Load(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Spec
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// Save writes s as YAML.
func (s *Spec) Save(path string) error {
	b, err := yaml.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Validate checks names, speeds and links and fills defaults.
func (s *Spec) Validate() error {
	if len(s.Devices) == 0 {
		return fmt.Errorf("cluster has no devices")
	}
	if s.Topology == "" {
		s.Topology = Switched
	}
	if s.Topology != Switched && s.Topology != Shared {
		return fmt.Errorf("topology %q: want %q or %q", s.Topology, Switched, Shared)
	}
	if err := s.Link.check(); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	seen := map[string]bool{}
	for i, d := range s.Devices {
		if d.Name == "" {
			return fmt.Errorf("device %d has no name", i)
		}
		if seen[d.Name] {
			return fmt.Errorf("device name %q is used twice", d.Name)
		}
		seen[d.Name] = true
		if d.GFLOPS <= 0 {
			return fmt.Errorf("device %q: gflops must be positive", d.Name)
		}
		for c, v := range d.ByClass {
			if v <= 0 {
				return fmt.Errorf("device %q: gflops_by_class %s must be positive", d.Name, c)
			}
		}
		for c, v := range d.BytesPerSec {
			if v <= 0 {
				return fmt.Errorf("device %q: bytes_per_sec_by_class %s must be positive", d.Name, c)
			}
		}
		if d.CPUQuota < 0 || d.CPUPeriodMS < 0 || (d.CPUQuota > 0) != (d.CPUPeriodMS > 0) {
			return fmt.Errorf("device %q: cpu_quota (%g) and cpu_period_ms (%g) go together and must be positive", d.Name, d.CPUQuota, d.CPUPeriodMS)
		}
	}
	if s.Coordinator != nil && (s.Coordinator.Bandwidth <= 0 || s.Coordinator.LatencyMS < 0) {
		return fmt.Errorf("coordinator link: bandwidth must be positive and latency not negative")
	}
	for _, l := range s.Links {
		if !seen[l.A] || !seen[l.B] {
			return fmt.Errorf("link %s–%s names an unknown device", l.A, l.B)
		}
		if err := l.Link.check(); err != nil {
			return fmt.Errorf("link %s–%s: %w", l.A, l.B, err)
		}
	}
	return nil
}

// N is the number of devices.
func (s *Spec) N() int { return len(s.Devices) }

// MemorySpeed is device i's bytes/s term for an operator class (0: none).
func (s *Spec) MemorySpeed(i int, class string) float64 {
	return s.Devices[i].BytesPerSec[class]
}

// Speed is device i's speed in FLOP/s for an operator class.
func (s *Spec) Speed(i int, class string) float64 {
	d := s.Devices[i]
	if v, ok := d.ByClass[class]; ok {
		return v * 1e9
	}
	return d.GFLOPS * 1e9
}

// LinkBetween returns the link from device i to device j.
func (s *Spec) LinkBetween(i, j int) Link {
	a, b := s.Devices[i].Name, s.Devices[j].Name
	for _, l := range s.Links {
		if (l.A == a && l.B == b) || (l.A == b && l.B == a) {
			return l.Link
		}
	}
	return s.Link
}

// Index returns the index of the named device, or -1.
func (s *Spec) Index(name string) int {
	for i, d := range s.Devices {
		if d.Name == name {
			return i
		}
	}
	return -1
}

// Bytes is a byte count that reads "512MiB", "1GB", "1.5G" or a plain number.
type Bytes int64

// ParseBytes parses a byte count with an optional unit (B, K/KB/KiB, M, G, T;
// KB=1000, KiB and bare K=1024).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad byte count %q", s)
	}
	mult := map[string]float64{"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("bad byte unit %q in %q", unit, s)
	}
	return int64(v * mult), nil
}

// UnmarshalYAML accepts a number or a string with a unit.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseBytes(n.Value)
	if err != nil {
		return err
	}
	*b = Bytes(v)
	return nil
}

// Bandwidth is a link rate in bytes per second that reads "100Mbps",
// "1Gbit", "50mbit/s", "12.5MB/s" or a plain number of bit/s.
type Bandwidth float64

// ParseBandwidth parses a rate and returns bytes per second. Bit units
// (bps, kbit, Mbps, Gbit/s, or a bare number of bit/s) and byte units with a
// capital B (B/s, KB/s, MB/s, GB/s) are accepted.
func ParseBandwidth(s string) (float64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t[:i]), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("bad bandwidth %q", s)
	}
	unit := strings.TrimSpace(t[i:])
	switch unit {
	case "B":
		return v, nil
	case "KB":
		return v * 1e3, nil
	case "MB":
		return v * 1e6, nil
	case "GB":
		return v * 1e9, nil
	}
	bits := map[string]float64{"": 1, "bps": 1, "bit": 1, "b": 1,
		"kbps": 1e3, "kbit": 1e3, "k": 1e3, "mbps": 1e6, "mbit": 1e6, "m": 1e6, "gbps": 1e9, "gbit": 1e9, "g": 1e9}
	if m, ok := bits[strings.ToLower(unit)]; ok {
		return v * m / 8, nil
	}
	return 0, fmt.Errorf("bad bandwidth unit %q in %q (use e.g. 100Mbps, 1Gbit, 12.5MB/s)", unit, s)
}

// UnmarshalYAML accepts a number (bit/s) or a string with a unit.
func (b *Bandwidth) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseBandwidth(n.Value)
	if err != nil {
		return err
	}
	*b = Bandwidth(v)
	return nil
}

// MarshalYAML writes the rate in Mbit/s.
func (b Bandwidth) MarshalYAML() (any, error) {
	return fmt.Sprintf("%gMbps", float64(b)*8/1e6), nil
}

// String formats the rate in Mbit/s.
func (b Bandwidth) String() string { return fmt.Sprintf("%gMbps", float64(b)*8/1e6) }

// Mbps is the rate in Mbit/s.
func (b Bandwidth) Mbps() float64 { return float64(b) * 8 / 1e6 }

// MarshalJSON writes the rate like "100Mbps".
func (b Bandwidth) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON accepts a string with a unit or a number of bytes per second.
func (b *Bandwidth) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var v float64
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("bandwidth: want a string like \"100Mbps\" or a number of bytes/s")
		}
		*b = Bandwidth(v)
		return nil
	}
	v, err := ParseBandwidth(s)
	if err != nil {
		return err
	}
	*b = Bandwidth(v)
	return nil
}

// String formats a byte count for people: "1.50 GiB", "12.3 MiB", "512 B".
func (b Bytes) String() string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", int64(b))
}
