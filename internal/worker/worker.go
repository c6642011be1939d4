// Package worker is the per-device daemon (`iop worker`): it receives its
// program and only its own weight shards from a coordinator, connects to its
// peers in a full mesh, and runs requests — engine kernels for the compute
// steps, peer-to-peer transfers for the collectives — returning its output
// regions, a trace and its measured memory.
package worker

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/profile"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/transport"
)

// Options configure a worker.
type Options struct {
	// Name labels the worker in messages (default: the listen address).
	Name string
	// MemoryLimit refuses deployments whose weights and activations exceed
	// it (0: none). It is also the Go runtime's soft memory limit.
	MemoryLimit int64
	// TLS enables mutual TLS on every connection.
	TLS *tls.Config
	// Limits of every connection (zero: defaults).
	Limits transport.Limits
	// Threads for the kernels (0: as the deployment says, else all cores).
	Threads int
	// GCPercent is the garbage collector's target (GOGC) for the worker
	// process; 0 means DefaultGCPercent. Activations are pointer-free
	// float32 slices, so collecting often is cheap and keeps the resident
	// memory near the live weights and activations the plan predicts.
	GCPercent int
	// Fault injects a failure for tests: "corrupt-frame" (flip a bit of the
	// first tensor data frame sent to a peer), "oversize-frame" (announce a
	// frame beyond the limit instead), "no-mesh" (never connect to peers).
	Fault string
}

// DefaultGCPercent is the worker's default GOGC. A request allocates little
// (the runner's arena holds the activations), so the collector runs rarely
// even at a low target, and the garbage a worker holds in steady state
// (GOGC % of its live heap, weights included) stays small.
const DefaultGCPercent = 10

// Faults the worker can inject.
var Faults = []string{"corrupt-frame", "oversize-frame", "no-mesh"}

// Server is a worker.
type Server struct {
	opt Options
	ln  net.Listener

	mu  sync.Mutex // guards dep
	dep *deployment

	busy      sync.Mutex // one deploy or run at a time
	faultUsed atomic.Bool
	conns     sync.WaitGroup
}

type deployment struct {
	msg     *Deploy
	prog    *partition.Program
	runner  *partition.Runner
	mesh    *transport.Mesh
	weights int64
}

// New returns a worker serving on ln.
func New(ln net.Listener, opt Options) *Server {
	if opt.Name == "" {
		opt.Name = ln.Addr().String()
	}
	if opt.GCPercent == 0 {
		opt.GCPercent = DefaultGCPercent
	}
	debug.SetGCPercent(opt.GCPercent)
	if runtime.GOMAXPROCS(0) < 2 {
		// On one CPU (a single-core device, or a testbed device pinned to
		// one) a computing goroutine would hold the only P until the
		// scheduler preempts it after 10 ms, and the connections' reader
		// and writer goroutines — the sends queued before a computation
		// included — would wait for it. A second P lets the OS interleave
		// them, as it would threads.
		runtime.GOMAXPROCS(2)
	}
	if opt.MemoryLimit > 0 {
		// A soft limit for the garbage collector: the model's budget plus
		// room for the runtime itself.
		debug.SetMemoryLimit(opt.MemoryLimit + 32<<20)
	}
	return &Server{opt: opt, ln: ln}
}

// Addr is the listen address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until ctx ends; it then closes the listener
// and the peer mesh and returns nil.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	defer s.shutdown()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.handle(ctx, nc)
		}()
	}
}

func (s *Server) shutdown() {
	s.mu.Lock()
	dep := s.dep
	s.mu.Unlock()
	if dep != nil {
		dep.mesh.Close()
	}
}

func (s *Server) handle(ctx context.Context, nc net.Conn) {
	nc, err := transport.Accept(nc, s.opt.TLS, 10*time.Second)
	if err != nil {
		slog.Warn("refused connection", "worker", s.opt.Name, "err", err)
		return
	}
	c := transport.NewConn(nc, s.opt.Limits)
	h, err := c.ReadHeader(time.Now().Add(10 * time.Second))
	if err != nil || h.Kind != transport.Control {
		slog.Warn("bad hello", "worker", s.opt.Name, "remote", c.RemoteAddr(), "err", err, "kind", h.Kind)
		c.Close()
		return
	}
	b, err := c.ReadSmall(h)
	if err != nil {
		c.Close()
		return
	}
	var hello struct {
		Role string `json:"role"`
		transport.PeerHello
	}
	if err := json.Unmarshal(b, &hello); err != nil {
		c.Close()
		return
	}
	switch hello.Role {
	case "peer":
		s.acceptPeer(c, hello.PeerHello)
	case "coordinator":
		s.serveCoordinator(ctx, c)
	default:
		// `iop profile` measures operator speed and links through the
		// worker, inside its namespace and cgroup.
		ok, err := profile.ServeRole(ctx, hello.Role, c, profile.AgentOptions{Name: s.opt.Name, TLS: s.opt.TLS,
			Dialer: profile.Dialer{TLS: s.opt.TLS}, Limits: s.opt.Limits})
		if !ok {
			slog.Warn("unknown role", "worker", s.opt.Name, "role", hello.Role)
		} else if err != nil {
			slog.Warn("profile session", "worker", s.opt.Name, "err", err)
		}
		c.Close()
	}
}

func (s *Server) acceptPeer(c *transport.Conn, hello transport.PeerHello) {
	if s.opt.Fault == "no-mesh" {
		transport.Refuse(c, "fault injected: no-mesh")
		return
	}
	s.mu.Lock()
	dep := s.dep
	s.mu.Unlock()
	if dep == nil {
		transport.Refuse(c, fmt.Sprintf("worker %s holds no deployment", s.opt.Name))
		return
	}
	if err := dep.mesh.Accept(c, hello); err != nil {
		slog.Info("peer refused", "worker", s.opt.Name, "err", err)
	}
}

// coordSession is one coordinator connection.
type coordSession struct {
	s *Server
	c *transport.Conn

	mu      sync.Mutex
	running uint64
	cancel  context.CancelFunc
	runDone chan struct{}
}

func (s *Server) serveCoordinator(ctx context.Context, c *transport.Conn) {
	cs := &coordSession{s: s, c: c}
	defer func() {
		// The coordinator is gone: abort its request.
		cs.mu.Lock()
		if cs.cancel != nil {
			cs.cancel()
		}
		done := cs.runDone
		cs.mu.Unlock()
		if done != nil {
			<-done
		}
		c.Close()
	}()
	if err := c.WriteControl(0, Reply{Type: "status", Status: s.status()}); err != nil {
		return
	}
	for {
		// The coordinator may stay idle for long; a dead one is noticed
		// when the connection breaks.
		h, err := c.ReadHeader(time.Now().Add(24 * time.Hour))
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				slog.Debug("coordinator connection", "worker", s.opt.Name, "err", err)
			}
			return
		}
		if h.Kind == transport.Ping {
			if _, err := c.ReadSmall(h); err != nil {
				return
			}
			continue
		}
		if h.Kind != transport.Control {
			slog.Warn("unexpected frame from coordinator", "worker", s.opt.Name, "kind", h.Kind)
			return
		}
		var m Msg
		if err := c.ReadControl(h, &m); err != nil {
			slog.Warn("bad message from coordinator", "worker", s.opt.Name, "err", err)
			return
		}
		switch m.Type {
		case "status":
			if err := c.WriteControl(0, Reply{Type: "status", Status: s.status()}); err != nil {
				return
			}
		case "deploy":
			if m.Deploy == nil {
				return
			}
			if err := cs.deploy(m.Deploy); err != nil {
				slog.Warn("deploy failed", "worker", s.opt.Name, "err", err)
				return
			}
		case "run":
			if m.Run == nil {
				return
			}
			if err := cs.startRun(ctx, m.Run); err != nil {
				slog.Warn("run failed", "worker", s.opt.Name, "err", err)
				return
			}
		case "cancel":
			cs.mu.Lock()
			if cs.running == m.Req && cs.cancel != nil {
				cs.cancel()
			}
			cs.mu.Unlock()
		default:
			slog.Warn("unknown message", "worker", s.opt.Name, "type", m.Type)
			return
		}
	}
}

func (s *Server) status() *Status {
	st := &Status{Name: s.opt.Name, MemoryLimit: s.opt.MemoryLimit, Device: -1, Memory: measureMemory()}
	s.mu.Lock()
	if s.dep != nil {
		st.Deployment, st.PlanHash, st.Device, st.WeightBytes = s.dep.msg.Deployment, s.dep.msg.PlanHash, s.dep.msg.Device, s.dep.weights
	}
	s.mu.Unlock()
	return st
}

// deploy handles a deploy message. A returned error means the connection
// is unusable; refusals are replies.
func (cs *coordSession) deploy(d *Deploy) error {
	s, c := cs.s, cs.c
	refuse := func(format string, args ...any) error {
		msg := fmt.Sprintf("device %s: ", s.opt.Name) + fmt.Sprintf(format, args...)
		return c.WriteControl(0, Reply{Type: "error", Error: msg})
	}
	if d.Program == nil {
		return refuse("deploy without a program")
	}
	if d.Device < 0 || d.Device >= len(d.Addrs) {
		return refuse("device index %d outside a mesh of %d", d.Device, len(d.Addrs))
	}
	// Check the memory limit before a byte of weights is sent: shapes are
	// enough to know the shard and activation sizes.
	shapes := make(map[string]*tensor.Tensor, len(d.Program.Consts))
	for _, cs := range d.Program.Consts {
		shapes[cs.Name] = &tensor.Tensor{DType: cs.DType, Shape: cs.Shape}
	}
	shapeProg, err := d.Program.Program(shapes)
	if err != nil {
		return refuse("bad program: %v", err)
	}
	weights := d.Program.WeightBytes()
	acts := cost.PeakActivationBytes(shapeProg)
	if lim := s.opt.MemoryLimit; lim > 0 && weights+acts > lim {
		return refuse("shard of %s (weights %s + peak activations %s) exceeds the memory limit of %s",
			human(weights+acts), human(weights), human(acts), human(lim))
	}
	s.busy.Lock()
	defer s.busy.Unlock()
	// Drop the previous deployment before receiving the new shard so two
	// never coexist in memory.
	s.mu.Lock()
	old := s.dep
	s.dep = nil
	s.mu.Unlock()
	if old != nil {
		old.mesh.Close()
		old = nil
		runtime.GC()
		debug.FreeOSMemory()
	}
	if err := c.WriteControl(0, Reply{Type: "ready"}); err != nil {
		return err
	}
	consts := make(map[string]*tensor.Tensor, len(d.Program.Consts))
	for i, spec := range d.Program.Consts {
		h, err := c.ReadHeader(time.Time{})
		if err != nil {
			return fmt.Errorf("receiving weight shard %q: %w", spec.Name, err)
		}
		if h.Kind != transport.TensorHead || int(h.Tag) != i {
			return fmt.Errorf("receiving weight shard %d: got a %s frame with tag %d", i, h.Kind, h.Tag)
		}
		t, err := c.ReadTensorBody(h)
		if err != nil {
			return fmt.Errorf("receiving weight shard %q: %w", spec.Name, err)
		}
		consts[spec.Name] = t
	}
	prog, err := d.Program.Program(consts)
	if err != nil {
		return refuse("bad program: %v", err)
	}
	runner, err := partition.NewRunner(prog)
	if err != nil {
		return refuse("%v", err)
	}
	dialer := transport.Dialer{TLS: s.opt.TLS}
	mc := transport.MeshConfig{Self: d.Device, Addrs: d.Addrs, Names: d.Names, Deployment: d.Deployment, Dial: dialer.Dial, Limits: s.opt.Limits}
	if d.Shaping.Rate > 0 {
		// One bucket for the device's uplink and one for its downlink,
		// shared by all its peer connections (a switched LAN).
		up, down := shaper.NewLimiter(d.Shaping.Rate, 0), shaper.NewLimiter(d.Shaping.Rate, 0)
		mc.Wrap = func(nc net.Conn) net.Conn {
			return shaper.New(nc, shaper.Options{WriteLimiter: up, ReadLimiter: down})
		}
	}
	// The per-message latency (tc has no netem on the testbed either),
	// applied by the receiving mesh.
	mc.Latency = time.Duration(d.Shaping.LatencyMS * float64(time.Millisecond))
	mc.Fault = s.faultHook()
	dep := &deployment{msg: d, prog: prog, runner: runner, mesh: transport.NewMesh(mc), weights: weights}
	s.mu.Lock()
	s.dep = dep
	s.mu.Unlock()
	// Collect what deploying left behind (decoded messages, the previous
	// deployment) now, and have the heap's steady-state headroom resident
	// before the first request.
	warm := settleHeap(s.opt.GCPercent, s.opt.MemoryLimit)
	slog.Info("deployed", "worker", s.opt.Name, "device", d.Device, "plan", d.PlanHash, "weights", weights, "heap_headroom", warm)
	return c.WriteControl(0, Reply{Type: "deployed", Status: s.status()})
}

func (s *Server) faultHook() transport.FaultHook {
	switch s.opt.Fault {
	case "corrupt-frame", "oversize-frame":
	default:
		return nil
	}
	return func(h *transport.Header, payload []byte) {
		if h.Kind != transport.TensorData || s.faultUsed.Load() {
			return
		}
		s.faultUsed.Store(true)
		if s.opt.Fault == "corrupt-frame" {
			h.CRC ^= 0x5a5a // as if a payload bit had flipped in flight
		} else {
			h.Len = 1 << 31
		}
		slog.Warn("fault injected", "worker", s.opt.Name, "fault", s.opt.Fault, "req", h.Req, "tag", h.Tag)
	}
}

// startRun reads the request's inputs and runs it in the background; the
// session keeps reading (for a cancel).
func (cs *coordSession) startRun(ctx context.Context, r *RunRequest) error {
	s, c := cs.s, cs.c
	inputs := make([]*tensor.Tensor, r.Inputs)
	for i := range inputs {
		h, err := c.ReadHeader(time.Time{})
		if err != nil {
			return fmt.Errorf("receiving input %d: %w", i, err)
		}
		if h.Kind != transport.TensorHead || int(h.Tag) != i {
			return fmt.Errorf("receiving input %d: got a %s frame with tag %d", i, h.Kind, h.Tag)
		}
		if inputs[i], err = c.ReadTensorBody(h); err != nil {
			return fmt.Errorf("receiving input %d: %w", i, err)
		}
	}
	// The previous request may still be returning after its result went
	// out (the coordinator sends the next one as soon as it has it): wait.
	cs.mu.Lock()
	prev := cs.runDone
	cs.mu.Unlock()
	if prev != nil {
		<-prev
	}
	cs.mu.Lock()
	timeout := time.Duration(r.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	cs.running, cs.cancel, cs.runDone = r.Req, cancel, make(chan struct{})
	done := cs.runDone
	cs.mu.Unlock()
	go func() {
		defer close(done)
		defer cancel()
		outs, res, err := s.run(rctx, r, inputs)
		if err != nil {
			slog.Info("request failed", "worker", s.opt.Name, "req", r.Req, "err", err)
			canceled := errors.Is(rctx.Err(), context.Canceled)
			c.WriteControl(r.Req, Reply{Type: "error", Error: fmt.Sprintf("device %s: %v", s.opt.Name, err), Canceled: canceled})
			return
		}
		for i, t := range outs {
			if err := c.WriteTensor(r.Req, i, t); err != nil {
				c.Close()
				return
			}
		}
		c.WriteControl(r.Req, Reply{Type: "result", Result: res})
	}()
	return nil
}

func (s *Server) run(ctx context.Context, r *RunRequest, inputs []*tensor.Tensor) ([]*tensor.Tensor, *Result, error) {
	s.busy.Lock()
	defer s.busy.Unlock()
	s.mu.Lock()
	dep := s.dep
	s.mu.Unlock()
	if dep == nil || dep.msg.Deployment != r.Deployment {
		return nil, nil, errors.New("not deployed (or deployed with another plan); deploy first")
	}
	ok := false
	defer func() {
		if ok {
			dep.mesh.Finish(r.Req)
		} else {
			dep.mesh.Abort(r.Req)
		}
	}()
	resetPeakRSS()
	t0 := time.Now()
	if s.opt.Fault == "no-mesh" {
		<-ctx.Done()
		return nil, nil, fmt.Errorf("fault injected: no-mesh: %w", ctx.Err())
	}
	mt := time.Duration(r.MeshTimeoutMS) * time.Millisecond
	if mt <= 0 {
		mt = 10 * time.Second
	}
	mctx, cancel := context.WithTimeout(ctx, mt)
	err := dep.mesh.Ensure(mctx)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("mesh: %w", err)
	}
	meshTime := time.Since(t0)
	threads := s.opt.Threads
	if threads <= 0 {
		threads = dep.msg.Threads
	}
	pool := kernels.NewPool(threads)
	defer pool.Close()
	t1 := time.Now()
	slog.Debug("run start", "worker", s.opt.Name, "req", r.Req, "mesh", meshTime)
	outs, events, err := dep.runner.Run(ctx, pool, dep.mesh.Request(r.Req), inputs)
	slog.Debug("run end", "worker", s.opt.Name, "req", r.Req, "err", err)
	if err != nil {
		return nil, nil, err
	}
	ok = true
	res := &Result{Req: r.Req, Outputs: len(outs), Events: events, RunNS: time.Since(t1).Nanoseconds(), MeshNS: meshTime.Nanoseconds(),
		StartUnixNS: t1.UnixNano(), Memory: measureMemory()}
	return outs, res, nil
}

// resetPeakRSS asks the kernel to reset VmHWM to the current RSS, so the
// next reading is the request's peak (Linux ≥ 4.0; ignored elsewhere).
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// measureMemory reads VmHWM and VmRSS from /proc/self/status and the Go heap.
func measureMemory() Memory {
	var m Memory
	if f, err := os.Open("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			var dst *int64
			switch {
			case strings.HasPrefix(line, "VmHWM:"):
				dst = &m.PeakRSS
			case strings.HasPrefix(line, "VmRSS:"):
				dst = &m.RSS
			default:
				continue
			}
			fs := strings.Fields(line)
			if len(fs) >= 2 {
				if v, err := strconv.ParseInt(fs[1], 10, 64); err == nil {
					*dst = v << 10 // kB
				}
			}
		}
		f.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.Heap, m.HeapSys = int64(ms.HeapInuse), int64(ms.HeapSys)
	return m
}

func human(b int64) string { return cluster.Bytes(b).String() }
