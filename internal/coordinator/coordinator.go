// Package coordinator deploys a compiled plan to running workers (each gets
// its program and only its own weight shards), runs requests on them — the
// input regions go to the devices that hold them, the output regions and
// traces come back — and reports measured against predicted latency and
// memory. It also starts local worker processes for `iop run --local`.
package coordinator

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/transport"
	"github.com/iop-edge/iop/internal/worker"
)

// Options configure a coordinator.
type Options struct {
	// TLS enables mutual TLS to the workers.
	TLS *tls.Config
	// Limits of the worker connections (zero: defaults).
	Limits transport.Limits
	// ConnectTimeout bounds connecting to a worker (with retries).
	ConnectTimeout time.Duration
	// RequestTimeout bounds one request end to end.
	RequestTimeout time.Duration
	// MeshTimeout bounds the workers' (re)connection to their peers.
	MeshTimeout time.Duration
	// CancelGrace is how long workers get to acknowledge a cancel before
	// their connection is dropped.
	CancelGrace time.Duration
	// Shaping is the in-process link emulation workers apply (loopback).
	Shaping worker.Shaping
	// Threads per worker (0: all cores of its machine).
	Threads int
	// Dial, if set, opens the connection to device d (e.g. from inside its
	// testbed namespace).
	Dial func(ctx context.Context, d int, addr string) (net.Conn, error)
}

func (o *Options) defaults() {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Minute
	}
	if o.MeshTimeout <= 0 {
		o.MeshTimeout = 10 * time.Second
	}
	if o.CancelGrace <= 0 {
		o.CancelGrace = 5 * time.Second
	}
}

// Coordinator drives a set of workers, one per device.
type Coordinator struct {
	opt   Options
	names []string
	addrs []string

	mu    sync.Mutex
	conns []*wconn

	ps       *partition.Programs
	planHash string
	model    string
	lastReq  uint64
}

// wconn is a connection to one worker.
type wconn struct {
	c      *transport.Conn
	status *worker.Status
}

// New returns a coordinator for workers at addrs (device i at addrs[i]).
func New(names, addrs []string, opt Options) *Coordinator {
	opt.defaults()
	return &Coordinator{opt: opt, names: names, addrs: addrs, conns: make([]*wconn, len(addrs))}
}

// Close closes the worker connections.
func (co *Coordinator) Close() {
	co.mu.Lock()
	defer co.mu.Unlock()
	for i, w := range co.conns {
		if w != nil {
			w.c.Close()
			co.conns[i] = nil
		}
	}
}

func (co *Coordinator) label(d int) string {
	return fmt.Sprintf("device %s (%s)", co.names[d], co.addrs[d])
}

// conn returns the connection to worker d, connecting if needed.
func (co *Coordinator) conn(ctx context.Context, d int) (*wconn, error) {
	co.mu.Lock()
	w := co.conns[d]
	co.mu.Unlock()
	if w != nil {
		select {
		case <-w.c.Done():
		default:
			return w, nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, co.opt.ConnectTimeout)
	defer cancel()
	dialer := transport.Dialer{TLS: co.opt.TLS}
	if co.opt.Dial != nil {
		dialer.Net = func(ctx context.Context, addr string) (net.Conn, error) { return co.opt.Dial(ctx, d, addr) }
	}
	nc, err := dialer.DialRetry(cctx, co.addrs[d])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", co.label(d), err)
	}
	c := transport.NewConn(nc, co.opt.Limits)
	if err := c.WriteControl(0, worker.Hello{Role: "coordinator"}); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", co.label(d), err)
	}
	dl, _ := cctx.Deadline()
	rep, err := readReply(c, dl)
	if err != nil {
		c.Close()
		if errors.Is(err, io.EOF) && co.opt.TLS == nil {
			err = fmt.Errorf("%w (the worker closed the connection: does it require mutual TLS? give --tls-ca, --tls-cert and --tls-key)", err)
		}
		return nil, fmt.Errorf("%s: %w", co.label(d), err)
	}
	if rep.Type != "status" || rep.Status == nil {
		c.Close()
		return nil, fmt.Errorf("%s: unexpected %q reply to hello", co.label(d), rep.Type)
	}
	w = &wconn{c: c, status: rep.Status}
	co.mu.Lock()
	co.conns[d] = w
	co.mu.Unlock()
	return w, nil
}

// liveConn returns a connection to worker d with fresh status: an
// existing connection is checked with a status exchange (a worker that
// died or restarted since is reconnected).
func (co *Coordinator) liveConn(ctx context.Context, d int) (*wconn, error) {
	for attempt := 0; ; attempt++ {
		w, err := co.conn(ctx, d)
		if err != nil {
			return nil, err
		}
		err = w.c.WriteControl(0, worker.Msg{Type: "status"})
		var rep *worker.Reply
		if err == nil {
			rep, err = readReply(w.c, time.Now().Add(co.opt.ConnectTimeout))
		}
		if err == nil && rep.Status != nil {
			w.status = rep.Status
			return w, nil
		}
		co.drop(d, w)
		if err == nil {
			err = fmt.Errorf("unexpected %q reply to status", rep.Type)
		}
		if attempt > 0 {
			return nil, fmt.Errorf("%s: status: %w", co.label(d), err)
		}
	}
}

func (co *Coordinator) drop(d int, w *wconn) {
	w.c.Close()
	co.mu.Lock()
	if co.conns[d] == w {
		co.conns[d] = nil
	}
	co.mu.Unlock()
}

func readReply(c *transport.Conn, deadline time.Time) (*worker.Reply, error) {
	for {
		h, err := c.ReadHeader(deadline)
		if err != nil {
			return nil, err
		}
		if h.Kind == transport.Ping {
			if _, err := c.ReadSmall(h); err != nil {
				return nil, err
			}
			continue
		}
		if h.Kind != transport.Control {
			return nil, fmt.Errorf("%w: expected a control frame, got %s", transport.ErrCorrupt, h.Kind)
		}
		var r worker.Reply
		if err := c.ReadControl(h, &r); err != nil {
			return nil, err
		}
		return &r, nil
	}
}

// DeploymentID identifies a deployment, the same on every device: the
// plan, the mesh addresses and the emulation.
func DeploymentID(planHash string, addrs []string, sh worker.Shaping, threads int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%g\x00%g\x00%d", planHash, strings.Join(addrs, ","), sh.Rate, sh.LatencyMS, threads))
	return hex.EncodeToString(h[:12])
}

// DeployStats says what a deploy did.
type DeployStats struct {
	// Deployed lists the devices that received their shard; the others
	// already held this plan.
	Deployed []int
	// WeightBytes sent per device (0 where skipped).
	WeightBytes []int64
	Duration    time.Duration
}

// Deploy gives every worker its program and weight shards, skipping
// workers that already hold this plan (by planHash). Programs must come
// from partition.Compile with weights.
func (co *Coordinator) Deploy(ctx context.Context, ps *partition.Programs, planHash, model string) (*DeployStats, error) {
	if len(ps.Devices) != len(co.addrs) {
		return nil, fmt.Errorf("plan is for %d devices, the cluster has %d workers", len(ps.Devices), len(co.addrs))
	}
	co.ps, co.planHash, co.model = ps, planHash, model
	return co.ensureDeployed(ctx)
}

func (co *Coordinator) ensureDeployed(ctx context.Context) (*DeployStats, error) {
	if co.ps == nil {
		return nil, errors.New("nothing deployed")
	}
	t0 := time.Now()
	n := len(co.addrs)
	st := &DeployStats{WeightBytes: make([]int64, n)}
	errs := make([]error, n)
	sent := make([]bool, n)
	var wg sync.WaitGroup
	for d := 0; d < n; d++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[d], errs[d] = co.deployOne(ctx, d)
			if sent[d] {
				st.WeightBytes[d] = co.ps.Devices[d].WeightBytes()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for d, s := range sent {
		if s {
			st.Deployed = append(st.Deployed, d)
		}
	}
	st.Duration = time.Since(t0)
	return st, nil
}

func (co *Coordinator) deploymentID() string {
	return DeploymentID(co.planHash, co.addrs, co.opt.Shaping, co.opt.Threads)
}

// deployOne deploys device d unless it already holds the deployment.
func (co *Coordinator) deployOne(ctx context.Context, d int) (bool, error) {
	w, err := co.liveConn(ctx, d)
	if err != nil {
		return false, err
	}
	id := co.deploymentID()
	if w.status != nil && w.status.Deployment == id && w.status.Device == d {
		return false, nil
	}
	p := co.ps.Devices[d]
	msg := &worker.Deploy{Deployment: id, PlanHash: co.planHash, Model: co.model, Device: d, Addrs: co.addrs, Names: co.names,
		Program: p.Spec(), Shaping: co.opt.Shaping, Threads: co.opt.Threads}
	fail := func(err error) (bool, error) {
		co.drop(d, w)
		return false, fmt.Errorf("%s: deploy: %w", co.label(d), err)
	}
	if err := w.c.WriteControl(0, worker.Msg{Type: "deploy", Deploy: msg}); err != nil {
		return fail(err)
	}
	rep, err := readReply(w.c, time.Time{})
	if err != nil {
		return fail(err)
	}
	if rep.Type == "error" {
		// A refusal (e.g. the memory limit); the connection stays usable.
		return false, errors.New(rep.Error)
	}
	if rep.Type != "ready" {
		return fail(fmt.Errorf("unexpected %q reply", rep.Type))
	}
	for i, name := range p.ConstNames() {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := w.c.WriteTensor(0, i, p.Consts[name]); err != nil {
			return fail(fmt.Errorf("sending weight shard %q: %w", name, err))
		}
	}
	rep, err = readReply(w.c, time.Time{})
	if err != nil {
		return fail(err)
	}
	if rep.Type == "error" {
		w.status = nil
		return false, errors.New(rep.Error)
	}
	if rep.Type != "deployed" || rep.Status == nil {
		return fail(fmt.Errorf("unexpected %q reply", rep.Type))
	}
	w.status = rep.Status
	return true, nil
}

// DeviceResult is one worker's part of a request.
type DeviceResult struct {
	Name   string            `json:"name"`
	Addr   string            `json:"addr"`
	Events []partition.Event `json:"events"`
	RunMS  float64           `json:"run_ms"`
	MeshMS float64           `json:"mesh_ms"`
	// StartMS is when the device's program started (its events' zero),
	// from the request's start by the worker's wall clock: exact for
	// workers on the coordinator's machine (--local), as good as the
	// clocks' synchronization otherwise.
	StartMS float64 `json:"start_ms"`
	worker.Memory
}

// Result is one request's outcome.
type Result struct {
	Req     uint64           `json:"req"`
	Outputs []*tensor.Tensor `json:"-"`
	// Latency is from sending the inputs to having every output.
	Latency time.Duration  `json:"latency_ns"`
	Devices []DeviceResult `json:"devices"`
	// Redeployed lists devices that had to be deployed again first.
	Redeployed []int `json:"redeployed,omitempty"`
}

// Run runs one request: it re-deploys workers that lost the deployment
// (e.g. restarted), sends every device its input regions, and collects
// outputs and traces. On any failure it cancels the request on every
// worker and returns the first error, within the request timeout plus the
// cancel grace period.
func (co *Coordinator) Run(ctx context.Context, inputs []*tensor.Tensor) (*Result, error) {
	if co.ps == nil {
		return nil, errors.New("deploy a plan first")
	}
	parts, err := co.ps.SplitInputs(inputs)
	if err != nil {
		return nil, err
	}
	ds, err := co.ensureDeployed(ctx)
	if err != nil {
		return nil, err
	}
	n := len(co.addrs)
	req := uint64(time.Now().UnixNano())
	if req <= co.lastReq {
		req = co.lastReq + 1
	}
	co.lastReq = req
	ctx, cancel := context.WithTimeout(ctx, co.opt.RequestTimeout)
	defer cancel()
	type outcome struct {
		outs []*tensor.Tensor
		res  *worker.Result
		err  error
		at   time.Time
	}
	results := make([]outcome, n)
	conns := make([]*wconn, n)
	for d := range conns {
		if conns[d], err = co.conn(ctx, d); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	for d := 0; d < n; d++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &results[d]
			o.outs, o.res, o.err = co.runOne(ctx, d, conns[d], req, parts[d])
			o.at = time.Now()
			if o.err != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	latency := time.Since(t0)
	// Report the first failure that is not a consequence of the cancel,
	// and the other independent failures after it.
	var failed []*outcome
	for d := range results {
		if results[d].err != nil {
			failed = append(failed, &results[d])
		}
	}
	if len(failed) > 0 {
		sort.SliceStable(failed, func(a, b int) bool {
			ca, cb := isCancel(failed[a].err), isCancel(failed[b].err)
			if ca != cb {
				return !ca
			}
			return failed[a].at.Before(failed[b].at)
		})
		var also []string
		for _, o := range failed[1:] {
			if !isCancel(o.err) {
				also = append(also, o.err.Error())
			}
		}
		if len(also) > 0 {
			return nil, fmt.Errorf("%w (also: %s)", failed[0].err, strings.Join(also, "; "))
		}
		return nil, failed[0].err
	}
	res := &Result{Req: req, Latency: latency, Devices: make([]DeviceResult, n), Redeployed: ds.Deployed}
	outs := make([][]*tensor.Tensor, n)
	for d, o := range results {
		outs[d] = o.outs
		res.Devices[d] = DeviceResult{Name: co.names[d], Addr: co.addrs[d], Events: o.res.Events,
			RunMS: float64(o.res.RunNS) / 1e6, MeshMS: float64(o.res.MeshNS) / 1e6, Memory: o.res.Memory}
		if o.res.StartUnixNS != 0 {
			res.Devices[d].StartMS = float64(o.res.StartUnixNS-t0.UnixNano()) / 1e6
		}
	}
	if res.Outputs, err = co.ps.AssembleOutputs(outs); err != nil {
		return nil, err
	}
	return res, nil
}

type cancelError struct{ error }

func (e cancelError) Unwrap() error { return e.error }

func isCancel(err error) bool {
	var ce cancelError
	return errors.As(err, &ce)
}

// runOne runs request req on device d.
func (co *Coordinator) runOne(ctx context.Context, d int, w *wconn, req uint64, inputs []*tensor.Tensor) ([]*tensor.Tensor, *worker.Result, error) {
	label := co.label(d)
	var closedByUs atomic.Bool
	fail := func(err error) ([]*tensor.Tensor, *worker.Result, error) {
		co.drop(d, w)
		if closedByUs.Load() {
			return nil, nil, cancelError{fmt.Errorf("%s: request aborted: %w", label, err)}
		}
		return nil, nil, fmt.Errorf("%s: %w", label, err)
	}
	dl, _ := ctx.Deadline()
	msg := worker.Msg{Type: "run", Run: &worker.RunRequest{Req: req, Deployment: co.deploymentID(),
		TimeoutMS: time.Until(dl).Milliseconds(), MeshTimeoutMS: co.opt.MeshTimeout.Milliseconds(), Inputs: len(inputs)}}
	if err := w.c.WriteControl(req, msg); err != nil {
		return fail(err)
	}
	for i, t := range inputs {
		if err := w.c.WriteTensor(req, i, t); err != nil {
			return fail(fmt.Errorf("sending input %d: %w", i, err))
		}
	}
	// On cancel (another device failed, or the timeout), tell the worker,
	// and give it a grace period to answer before dropping the connection.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-stop:
			return
		case <-ctx.Done():
		}
		w.c.WriteControl(req, worker.Msg{Type: "cancel", Req: req})
		select {
		case <-stop:
		case <-time.After(co.opt.CancelGrace):
			closedByUs.Store(true)
			w.c.Close()
		}
	}()
	var outs []*tensor.Tensor
	for {
		h, err := w.c.ReadHeader(dl.Add(co.opt.CancelGrace))
		if err != nil {
			if errors.Is(err, transport.ErrCorrupt) || errors.Is(err, transport.ErrTooLarge) {
				return fail(err)
			}
			return fail(fmt.Errorf("connection lost during request: %w", err))
		}
		switch h.Kind {
		case transport.Ping:
			if _, err := w.c.ReadSmall(h); err != nil {
				return fail(err)
			}
		case transport.TensorHead:
			if h.Req != req || int(h.Tag) != len(outs) {
				return fail(fmt.Errorf("%w: output tensor of request %d tag %d, expected request %d tag %d", transport.ErrCorrupt, h.Req, h.Tag, req, len(outs)))
			}
			t, err := w.c.ReadTensorBody(h)
			if err != nil {
				return fail(err)
			}
			outs = append(outs, t)
		case transport.Control:
			var rep worker.Reply
			if err := w.c.ReadControl(h, &rep); err != nil {
				return fail(err)
			}
			switch {
			case h.Req != req:
				continue // a late answer to an older request
			case rep.Type == "error":
				if rep.Canceled {
					return nil, nil, cancelError{errors.New(rep.Error)}
				}
				return nil, nil, errors.New(rep.Error)
			case rep.Type == "result" && rep.Result != nil:
				if len(outs) != rep.Result.Outputs {
					return fail(fmt.Errorf("worker sent %d outputs, result says %d", len(outs), rep.Result.Outputs))
				}
				return outs, rep.Result, nil
			default:
				return fail(fmt.Errorf("unexpected %q reply during a request", rep.Type))
			}
		default:
			return fail(fmt.Errorf("%w: unexpected %s frame", transport.ErrCorrupt, h.Kind))
		}
	}
}

// Status asks every worker for its status.
func (co *Coordinator) Status(ctx context.Context) ([]*worker.Status, error) {
	out := make([]*worker.Status, len(co.addrs))
	for d := range co.addrs {
		w, err := co.conn(ctx, d)
		if err != nil {
			return nil, err
		}
		if err := w.c.WriteControl(0, worker.Msg{Type: "status"}); err != nil {
			co.drop(d, w)
			return nil, fmt.Errorf("%s: %w", co.label(d), err)
		}
		dl, _ := ctx.Deadline()
		if dl.IsZero() {
			dl = time.Now().Add(co.opt.ConnectTimeout)
		}
		rep, err := readReply(w.c, dl)
		if err != nil || rep.Status == nil {
			co.drop(d, w)
			return nil, fmt.Errorf("%s: status: %v", co.label(d), err)
		}
		w.status = rep.Status
		out[d] = rep.Status
	}
	return out, nil
}
