package coordinator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/iop-edge/iop/internal/testbed"
	"github.com/iop-edge/iop/internal/transport"
)

// Emulation names, as every result states them.
const (
	EmulationNetns    = "netns+tc"
	EmulationLoopback = "loopback+token-bucket"
	EmulationNone     = "none"
)

// LocalConfig describes worker processes to start on this machine.
type LocalConfig struct {
	// N is the number of workers (devices).
	N int
	// Exe is the iop binary (default: os.Executable()).
	Exe string
	// Mode is "auto" (the testbed when available, else loopback),
	// "netns" (the testbed or an error) or "loopback".
	Mode string
	// Bandwidth is each device's link rate in bytes/s (0: unshaped).
	Bandwidth float64
	// LatencyMS is the per-message latency (applied by the in-process
	// shaper in both modes; tc has no netem here).
	LatencyMS float64
	// CPUQuota limits each device to this fraction of a core (testbed only).
	CPUQuota float64
	// CPUPeriod is the CFS period of the quota (0: testbed.DefaultCPUPeriod).
	CPUPeriod time.Duration
	// MemoryLimits per device in bytes (0: none): the worker's
	// --memory-limit and, on the testbed, its cgroup limit.
	MemoryLimits []int64
	// Names of the devices (default dev0…).
	Names []string
	// TLS files per device, by name (nil: plain TCP).
	TLS map[string]transport.TLSFiles
	// ExtraArgs per device are appended to the worker's command line.
	ExtraArgs [][]string
	// Stderr receives the workers' logs (nil: discarded).
	Stderr io.Writer
	// LogLevel of the workers.
	LogLevel string
}

// Local is a set of worker processes on this machine.
type Local struct {
	Names     []string
	Addrs     []string
	Emulation string
	// Dial, on the testbed, connects from inside a device's namespace
	// (the coordinator talks to device i as if it sat next to it).
	Dial func(ctx context.Context, d int, addr string) (net.Conn, error)
	// Shaping to give the workers (loopback mode).
	Bandwidth, LatencyMS float64

	cfg   LocalConfig
	bed   *testbed.Bed
	mu    sync.Mutex // guards procs and exits
	procs []*exec.Cmd
	exits []*exit
}

// exit is a worker process's end: done is closed when it has exited.
type exit struct {
	done chan struct{}
	err  error
}

// StartLocal starts cfg.N `iop worker` processes and waits until each
// listens.
func StartLocal(ctx context.Context, cfg LocalConfig) (*Local, error) {
	if cfg.N < 1 {
		return nil, errors.New("need at least one worker")
	}
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the iop binary: %w", err)
		}
		cfg.Exe = exe
	}
	if cfg.Names == nil {
		for i := 0; i < cfg.N; i++ {
			cfg.Names = append(cfg.Names, fmt.Sprintf("dev%d", i))
		}
	}
	cfg.ExtraArgs = append([][]string(nil), cfg.ExtraArgs...)
	l := &Local{cfg: cfg, Names: cfg.Names, Addrs: make([]string, cfg.N), procs: make([]*exec.Cmd, cfg.N),
		exits: make([]*exit, cfg.N), LatencyMS: cfg.LatencyMS}
	mode := cfg.Mode
	if mode == "" {
		mode = "auto"
	}
	switch mode {
	case "auto", "netns":
		err := testbed.Available()
		if err == nil {
			err = l.upBed(ctx)
		}
		if err == nil {
			break
		}
		if mode == "netns" {
			return nil, fmt.Errorf("testbed: %w", err)
		}
		slog.Info("testbed not available; using loopback with the in-process shaper", "reason", err)
		mode = "loopback"
	case "loopback":
	default:
		return nil, fmt.Errorf("emulation mode %q: want auto, netns or loopback", mode)
	}
	if mode == "loopback" {
		l.Emulation = EmulationLoopback
		l.Bandwidth = cfg.Bandwidth
		if cfg.Bandwidth <= 0 && cfg.LatencyMS <= 0 {
			l.Emulation = EmulationNone
		}
	}
	for i := 0; i < cfg.N; i++ {
		if err := l.start(ctx, i, ""); err != nil {
			l.Stop()
			return nil, err
		}
	}
	return l, nil
}

func (l *Local) upBed(ctx context.Context) error {
	cfg := testbed.Config{Devices: l.cfg.N, LatencyMS: l.cfg.LatencyMS,
		Prefix: "run" + strconv.Itoa(os.Getpid()%1000000)}
	cfg.Bandwidth = l.cfg.Bandwidth
	cfg.CPUQuota = l.cfg.CPUQuota
	cfg.CPUPeriod = l.cfg.CPUPeriod
	for i := 0; i < l.cfg.N; i++ {
		var lim testbed.Limits
		if i < len(l.cfg.MemoryLimits) && l.cfg.MemoryLimits[i] > 0 {
			// The cgroup limit is a hard kill; leave the runtime some room
			// above the planned limit the worker enforces itself.
			lim.Memory = l.cfg.MemoryLimits[i] + 64<<20
		}
		cfg.PerDevice = append(cfg.PerDevice, lim)
	}
	bed, err := testbed.Up(ctx, cfg)
	if err != nil {
		return err
	}
	l.bed = bed
	l.Emulation = EmulationNetns
	l.Dial = func(ctx context.Context, d int, addr string) (net.Conn, error) {
		return bed.Dial(ctx, d, "tcp4", addr)
	}
	return nil
}

// start starts worker i (listening on listen, or an ephemeral port).
func (l *Local) start(ctx context.Context, i int, listen string) error {
	if listen == "" {
		listen = "127.0.0.1:0"
		if l.bed != nil {
			listen = l.bed.Devices[i].Addr + ":0"
		}
	}
	args := []string{"worker", "--listen", listen, "--name", l.Names[i]}
	if l.cfg.LogLevel != "" {
		args = append(args, "--log-level", l.cfg.LogLevel)
	}
	if i < len(l.cfg.MemoryLimits) && l.cfg.MemoryLimits[i] > 0 {
		args = append(args, "--memory-limit", strconv.FormatInt(l.cfg.MemoryLimits[i], 10))
	}
	if f, ok := l.cfg.TLS[l.Names[i]]; ok {
		args = append(args, "--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key)
	}
	if i < len(l.cfg.ExtraArgs) {
		args = append(args, l.cfg.ExtraArgs[i]...)
	}
	var cmd *exec.Cmd
	if l.bed != nil {
		cmd = l.bed.Command(i, l.cfg.Exe, args...)
	} else {
		cmd = exec.Command(l.cfg.Exe, args...)
	}
	cmd.Stderr = l.cfg.Stderr
	dieWithParent(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker %s: %w", l.Names[i], err)
	}
	ex := &exit{done: make(chan struct{})}
	l.mu.Lock()
	l.procs[i], l.exits[i] = cmd, ex
	l.mu.Unlock()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "listening on "); ok {
				select {
				case addrc <- strings.Fields(a)[0]:
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		ex.err = cmd.Wait()
		close(ex.done)
	}()
	select {
	case a := <-addrc:
		l.Addrs[i] = a
		return nil
	case <-ex.done:
		return fmt.Errorf("worker %s exited at start: %v", l.Names[i], ex.err)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("worker %s did not start listening within 30 s", l.Names[i])
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill kills worker i with SIGKILL (for fault tests) and waits for it to
// exit. Killing a worker that is not running does nothing.
func (l *Local) Kill(i int) error {
	l.mu.Lock()
	p, ex := l.procs[i], l.exits[i]
	l.procs[i] = nil
	l.mu.Unlock()
	if p == nil || p.Process == nil {
		return nil
	}
	p.Process.Kill()
	<-ex.done
	return nil
}

// Restart starts worker i again on its old address, with extra command
// line arguments instead of the configured ones.
func (l *Local) Restart(ctx context.Context, i int, extra ...string) error {
	l.Kill(i)
	if i < len(l.cfg.ExtraArgs) {
		l.cfg.ExtraArgs[i] = extra
	}
	return l.start(ctx, i, l.Addrs[i])
}

// Pid is worker i's process id (0 if it is not running).
func (l *Local) Pid(i int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.procs[i] == nil || l.procs[i].Process == nil {
		return 0
	}
	return l.procs[i].Process.Pid
}

// Stop terminates the workers (SIGTERM, then SIGKILL after 5 s) and takes
// the testbed down. It reports workers that did not exit cleanly.
func (l *Local) Stop() error {
	var errs []error
	for i := range l.procs {
		l.mu.Lock()
		p, ex := l.procs[i], l.exits[i]
		l.procs[i] = nil
		l.mu.Unlock()
		if p == nil || p.Process == nil {
			continue
		}
		p.Process.Signal(syscall.SIGTERM)
		select {
		case <-ex.done:
			if ex.err != nil {
				errs = append(errs, fmt.Errorf("worker %s: %v", l.Names[i], ex.err))
			}
		case <-time.After(5 * time.Second):
			p.Process.Kill()
			<-ex.done
			errs = append(errs, fmt.Errorf("worker %s ignored SIGTERM", l.Names[i]))
		}
	}
	if l.bed != nil {
		if err := l.bed.Down(); err != nil {
			errs = append(errs, err)
		}
		l.bed = nil
	}
	return errors.Join(errs...)
}

// CPULimit is worker i's CFS bandwidth limit on the testbed: the quota as
// a fraction of a core and its period (0, 0 without one, or off the
// testbed).
func (l *Local) CPULimit(i int) (quota float64, period time.Duration) {
	if l.bed == nil || i < 0 || i >= len(l.bed.Devices) {
		return 0, 0
	}
	d := l.bed.Devices[i]
	if d.CPUQuota <= 0 || d.CPUPeriodUS <= 0 {
		return 0, 0
	}
	return d.CPUQuota, time.Duration(d.CPUPeriodUS) * time.Microsecond
}
