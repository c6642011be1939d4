//go:build linux

package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Cgroup v1 hierarchies.
const (
	cpuRoot    = "/sys/fs/cgroup/cpu"
	memoryRoot = "/sys/fs/cgroup/memory"
	netnsDir   = "/run/netns"
)

// Available reports whether the testbed can run here: root, `ip` and `tc`
// on PATH, and cgroup v1 cpu and memory hierarchies.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("testbed needs root (network namespaces, tc, cgroups)")
	}
	for _, tool := range []string{"ip", "tc", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("testbed needs %q on PATH (apt-get install -y iproute2): %w", tool, err)
		}
	}
	for _, f := range []string{
		filepath.Join(cpuRoot, "cpu.cfs_quota_us"),
		filepath.Join(memoryRoot, "memory.limit_in_bytes"),
	} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("testbed needs cgroup v1 cpu and memory hierarchies: %w", err)
		}
	}
	return nil
}

// Up creates a bed: namespaces, bridge, veth pairs, tbf qdiscs and cgroups.
// On error everything already made is removed again. The bed stays up
// after the process exits; call Down (or Cleanup with the prefix).
func Up(ctx context.Context, c Config) (*Bed, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, err
	}
	unlock, err := lockState()
	if err != nil {
		return nil, err
	}
	defer unlock()

	p := c.Prefix
	if left := leftovers(p); len(left) > 0 {
		return nil, fmt.Errorf("testbed %q is already up or left over (%s); run `iop testbed down --prefix %s`", p, strings.Join(left, ", "), p)
	}
	if c.Subnet == 0 {
		n, err := pickSubnet(p, c.HostLink)
		if err != nil {
			return nil, err
		}
		c.Subnet = n
	}
	b := &Bed{
		Config: c,
		Bridge: nsName(p, "br"),
		Subnet: fmt.Sprintf("10.%d.0.0/24", c.Subnet),
	}
	for i := 0; i < c.Devices; i++ {
		name := fmt.Sprintf("dev%d", i)
		b.Devices = append(b.Devices, Device{
			Name:         name,
			Namespace:    nsName(p, name),
			Addr:         fmt.Sprintf("10.%d.0.%d", c.Subnet, i+1),
			Limits:       c.limits(i),
			CPUCgroup:    filepath.Join(cpuRoot, "iop-"+p, name),
			MemoryCgroup: filepath.Join(memoryRoot, "iop-"+p, name),
		})
		if d := &b.Devices[i]; d.CPUQuota > 0 {
			per := c.CPUPeriod
			if per == 0 {
				per = DefaultCPUPeriod(d.CPUQuota)
			}
			d.CPUPeriodUS = per.Microseconds()
		}
	}
	if c.HostLink {
		b.HostAddr = fmt.Sprintf("10.%d.0.254", c.Subnet)
		b.HostIface = fmt.Sprintf("iop%dh", c.Subnet)
	}
	if err := b.create(ctx); err != nil {
		if cerr := cleanup(p, b.HostIface); cerr != nil {
			slog.Warn("testbed: cleanup after failed up", "prefix", p, "err", cerr)
		}
		return nil, err
	}
	if err := b.save(); err != nil {
		if cerr := cleanup(p, b.HostIface); cerr != nil {
			slog.Warn("testbed: cleanup after failed up", "prefix", p, "err", cerr)
		}
		return nil, err
	}
	if w := CPUWarning(c, runtime.NumCPU()); w != "" {
		slog.Warn("testbed: " + w)
	}
	slog.Debug("testbed up", "prefix", p, "devices", c.Devices, "subnet", b.Subnet)
	return b, nil
}

func nsName(prefix, what string) string { return "iop-" + prefix + "-" + what }

// create runs the ip/tc commands and writes the cgroup files.
func (b *Bed) create(ctx context.Context) error {
	br := b.Bridge
	mtu := strconv.Itoa(b.Config.MTU)
	steps := [][]string{
		{"ip", "netns", "add", br},
		{"ip", "-n", br, "link", "set", "lo", "up"},
		{"ip", "-n", br, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", br, "link", "set", "br0", "up"},
	}
	for _, d := range b.Devices {
		port := d.Name // the bridge-side end, inside the bridge namespace
		steps = append(steps,
			[]string{"ip", "netns", "add", d.Namespace},
			[]string{"ip", "-n", d.Namespace, "link", "set", "lo", "up"},
			// Both ends are created directly in their namespaces, so
			// nothing appears in the host's namespace, not even briefly.
			[]string{"ip", "link", "add", "eth0", "mtu", mtu, "netns", d.Namespace, "type", "veth", "peer", "name", port, "mtu", mtu, "netns", br},
			[]string{"ip", "-n", br, "link", "set", port, "master", "br0"},
			[]string{"ip", "-n", br, "link", "set", port, "up"},
			[]string{"ip", "-n", d.Namespace, "addr", "add", d.Addr + "/24", "dev", "eth0"},
			[]string{"ip", "-n", d.Namespace, "link", "set", "eth0", "up"},
		)
		if d.Bandwidth > 0 {
			// Upload: the device's egress; download: the bridge port's
			// egress towards the device.
			steps = append(steps, tbf(d.Namespace, "eth0", d.Bandwidth), tbf(br, port, d.Bandwidth))
		}
	}
	if b.HostIface != "" {
		steps = append(steps,
			[]string{"ip", "link", "add", b.HostIface, "mtu", mtu, "type", "veth", "peer", "name", "host", "mtu", mtu, "netns", br},
			[]string{"ip", "link", "set", b.HostIface, "alias", nsName(b.Config.Prefix, "host")},
			[]string{"ip", "-n", br, "link", "set", "host", "master", "br0"},
			[]string{"ip", "-n", br, "link", "set", "host", "up"},
			[]string{"ip", "addr", "add", b.HostAddr + "/24", "dev", b.HostIface},
			[]string{"ip", "link", "set", b.HostIface, "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return err
		}
	}
	for _, d := range b.Devices {
		if err := d.makeCgroups(); err != nil {
			return err
		}
	}
	return nil
}

// tbf returns the tc command shaping dev in namespace ns to rate bytes/s
// with a bucket of TBFBurst(rate). The queue holds 50 ms of traffic; TCP
// then keeps the link busy.
func tbf(ns, dev string, rate float64) []string {
	burst := int64(TBFBurst(rate))
	return []string{"tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", strconv.FormatInt(int64(rate*8), 10) + "bit",
		"burst", strconv.FormatInt(burst, 10),
		"latency", "50ms"}
}

func (d *Device) makeCgroups() error {
	for _, dir := range []string{d.CPUCgroup, d.MemoryCgroup} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("testbed: cgroup for %s: %w", d.Name, err)
		}
	}
	if d.CPUQuota > 0 {
		// Quota first (it may exceed the period; the pair stays valid
		// whichever way the period moves), then the period, then the
		// quota again.
		q := max(1000, int64(d.CPUQuota*float64(d.CPUPeriodUS)))
		for _, kv := range [][2]string{{"cpu.cfs_quota_us", strconv.FormatInt(q, 10)}, {"cpu.cfs_period_us", strconv.FormatInt(d.CPUPeriodUS, 10)}, {"cpu.cfs_quota_us", strconv.FormatInt(q, 10)}} {
			if err := writeFile(filepath.Join(d.CPUCgroup, kv[0]), kv[1]); err != nil {
				return err
			}
		}
	}
	if d.Memory > 0 {
		if err := writeFile(filepath.Join(d.MemoryCgroup, "memory.limit_in_bytes"), strconv.FormatInt(d.Memory, 10)); err != nil {
			return err
		}
		// With swap accounting, forbid swapping past the limit too.
		sw := filepath.Join(d.MemoryCgroup, "memory.memsw.limit_in_bytes")
		if _, err := os.Stat(sw); err == nil {
			if err := writeFile(sw, strconv.FormatInt(d.Memory, 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeFile(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("testbed: write %s to %s: %w", value, path, err)
	}
	return nil
}

// run runs an ip/tc command and reports its output on failure.
func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testbed: %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// pickSubnet chooses n for 10.n.0.0/24: a hash of the prefix, moved on past
// subnets used by other beds or (with a host link) by the host's routes.
func pickSubnet(prefix string, hostLink bool) (int, error) {
	used := map[int]bool{}
	beds, _ := List()
	for _, b := range beds {
		used[b.Config.Subnet] = true
	}
	var routes string
	if hostLink {
		out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
		if err != nil {
			return 0, fmt.Errorf("testbed: list host routes: %w", err)
		}
		routes = string(out)
	}
	h := fnv.New32a()
	h.Write([]byte(prefix))
	const lo, span = 100, 150
	start := int(h.Sum32() % span)
	for k := 0; k < span; k++ {
		n := lo + (start+k)%span
		if used[n] || (hostLink && strings.Contains(routes, fmt.Sprintf("10.%d.", n))) {
			continue
		}
		return n, nil
	}
	return 0, errors.New("testbed: no free 10.n.0.0/24 subnet")
}

// lockState serializes Up and Cleanup between processes.
func lockState() (func(), error) {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(StateDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("testbed: lock %s: %w", f.Name(), err)
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

func statePath(prefix string) string { return filepath.Join(StateDir, prefix+".json") }

func (b *Bed) save() error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(statePath(b.Config.Prefix), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("testbed: save state: %w", err)
	}
	return nil
}

// Load reads the state of the bed with this prefix (brought up by this or
// another process).
func Load(prefix string) (*Bed, error) {
	if err := CheckPrefix(prefix); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(statePath(prefix))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("testbed %q is not up (no %s)", prefix, statePath(prefix))
		}
		return nil, fmt.Errorf("testbed: %w", err)
	}
	var b Bed
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", statePath(prefix), err)
	}
	return &b, nil
}

// List returns the beds that have state files, sorted by prefix.
func List() ([]*Bed, error) {
	ents, err := os.ReadDir(StateDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("testbed: %w", err)
	}
	var beds []*Bed
	for _, e := range ents {
		p, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || CheckPrefix(p) != nil {
			continue
		}
		b, err := Load(p)
		if err != nil {
			slog.Warn("testbed: unreadable state", "prefix", p, "err", err)
			continue
		}
		beds = append(beds, b)
	}
	sort.Slice(beds, func(i, j int) bool { return beds[i].Config.Prefix < beds[j].Config.Prefix })
	return beds, nil
}

// Leftovers lists what exists on this machine under prefix: namespaces,
// cgroup directories and the state file. Empty after a clean Down.
func Leftovers(prefix string) []string { return leftovers(prefix) }

func leftovers(prefix string) []string {
	var out []string
	out = append(out, namespaces(prefix)...)
	for _, root := range []string{cpuRoot, memoryRoot} {
		if _, err := os.Stat(filepath.Join(root, "iop-"+prefix)); err == nil {
			out = append(out, filepath.Join(root, "iop-"+prefix))
		}
	}
	if _, err := os.Stat(statePath(prefix)); err == nil {
		out = append(out, statePath(prefix))
	}
	return out
}

// namespaces lists the network namespaces named for prefix.
func namespaces(prefix string) []string {
	re := regexp.MustCompile(`^iop-` + regexp.QuoteMeta(prefix) + `-(br|dev[0-9]+)$`)
	ents, _ := os.ReadDir(netnsDir)
	var out []string
	for _, e := range ents {
		if re.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// Down kills the bed's processes and removes its namespaces, links,
// cgroups and state file.
func (b *Bed) Down() error {
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	return cleanup(b.Config.Prefix, b.HostIface)
}

// Cleanup removes everything named for prefix, whether or not a state file
// records it (e.g. after a crash).
func Cleanup(prefix string) error {
	if err := CheckPrefix(prefix); err != nil {
		return err
	}
	if err := Available(); err != nil {
		return err
	}
	host := ""
	if b, err := Load(prefix); err == nil {
		host = b.HostIface
	}
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	return cleanup(prefix, host)
}

func cleanup(prefix, hostIface string) error {
	var errs []error
	nss := namespaces(prefix)
	cgParents := []string{filepath.Join(cpuRoot, "iop-"+prefix), filepath.Join(memoryRoot, "iop-"+prefix)}

	// Kill every process in the bed: those in its cgroups and any other
	// process living in one of its namespaces.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := map[int]bool{}
		for _, parent := range cgParents {
			subs, _ := os.ReadDir(parent)
			for _, s := range subs {
				if s.IsDir() {
					for _, pid := range readPids(filepath.Join(parent, s.Name(), "cgroup.procs")) {
						pids[pid] = true
					}
				}
			}
		}
		for _, ns := range nss {
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids[pid] = true
				}
			}
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("testbed %s: processes %v survive SIGKILL", prefix, keys(pids)))
			break
		}
		for pid := range pids {
			if pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	if hostIface != "" {
		// Normally gone with the bridge namespace (a veth pair dies with
		// either end); remove it first in case the namespace is stuck.
		exec.Command("ip", "link", "del", hostIface).Run()
	}
	for _, ns := range nss {
		if err := run(context.Background(), "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	for _, parent := range cgParents {
		subs, _ := os.ReadDir(parent)
		for _, s := range subs {
			if s.IsDir() {
				if err := rmdirRetry(filepath.Join(parent, s.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := rmdirRetry(parent); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(statePath(prefix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		slog.Debug("testbed down", "prefix", prefix, "namespaces", len(nss))
	}
	return errors.Join(errs...)
}

// rmdirRetry removes a cgroup directory, retrying while the kernel still
// reports it busy (the last task's exit is asynchronous).
func rmdirRetry(dir string) error {
	var err error
	for k := 0; k < 100; k++ {
		err = syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("testbed: remove cgroup %s: %w", dir, err)
}

func readPids(path string) []int {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func keys(m map[int]bool) []int {
	var k []int
	for x := range m {
		k = append(k, x)
	}
	sort.Ints(k)
	return k
}

// wrapper is the shell script Command runs: it moves itself into the
// device's cgroups, then execs `ip netns exec NS CMD...`, so the command is
// limited from its first instruction and its pid is the one Start returns.
// The cgroups are joined before `ip netns exec`, which remounts /sys.
const wrapper = `echo $$ > "$1" && echo $$ > "$2" && ns="$3" && shift 3 && exec ip netns exec "$ns" "$@"`

// Command returns a command that runs name with args inside device i's
// network namespace and cgroups. Set Stdout, Env and so on as usual, then
// Start or Run it; cmd.Process.Pid is the command's own pid.
func (b *Bed) Command(i int, name string, args ...string) *exec.Cmd {
	d := b.Devices[i]
	full := append([]string{"-c", wrapper, "iop-testbed",
		filepath.Join(d.CPUCgroup, "cgroup.procs"),
		filepath.Join(d.MemoryCgroup, "cgroup.procs"),
		d.Namespace, name}, args...)
	return exec.Command("sh", full...)
}

// CommandContext is Command with a context that kills the process.
func (b *Bed) CommandContext(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	c := b.Command(i, name, args...)
	cc := exec.CommandContext(ctx, c.Path)
	cc.Args = c.Args
	return cc
}

// CPUStat returns device i's cgroup cpu.stat counters (nr_periods,
// nr_throttled, throttled_time) and the CPU time its processes used.
func (b *Bed) CPUStat(i int) (map[string]int64, error) {
	d := b.Devices[i]
	st := map[string]int64{}
	data, err := os.ReadFile(filepath.Join(d.CPUCgroup, "cpu.stat"))
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			st[f[0]] = v
		}
	}
	return st, nil
}

// MemoryStat returns device i's memory cgroup counters: usage, max_usage,
// failcnt (bytes and counts from memory.*) and oom_kill when the kernel
// reports it.
func (b *Bed) MemoryStat(i int) (map[string]int64, error) {
	d := b.Devices[i]
	st := map[string]int64{}
	for _, f := range []string{"usage_in_bytes", "max_usage_in_bytes", "failcnt"} {
		data, err := os.ReadFile(filepath.Join(d.MemoryCgroup, "memory."+f))
		if err != nil {
			return nil, fmt.Errorf("testbed: %w", err)
		}
		v, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		st[f] = v
	}
	if data, err := os.ReadFile(filepath.Join(d.MemoryCgroup, "memory.oom_control")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && f[0] == "oom_kill" {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				st["oom_kill"] = v
			}
		}
	}
	return st, nil
}
