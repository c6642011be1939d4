package partition

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/iop-edge/iop/internal/cputime"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/tensor"
)

// Transport moves tensor regions between devices. Send may return before
// the peer received (it must not block on the peer's progress for long);
// Recv blocks until the message with the tag from peer arrives.
type Transport interface {
	Send(ctx context.Context, peer, tag int, t *tensor.Tensor) error
	Recv(ctx context.Context, peer, tag int) (*tensor.Tensor, error)
}

// Event is one executed step in a trace.
type Event struct {
	Step     int           `json:"step"`
	Kind     string        `json:"kind"`
	Op       string        `json:"op,omitempty"`
	Orig     string        `json:"orig,omitempty"`
	Peer     int           `json:"peer,omitempty"`
	Start    time.Duration `json:"start_ns"`
	End      time.Duration `json:"end_ns"`
	BytesIn  int64         `json:"bytes_in,omitempty"`
	BytesOut int64         `json:"bytes_out,omitempty"`
	// CPU is the process's CPU time during the step (all its threads:
	// kernels, connection goroutines, the Go runtime). Wall time well above
	// CPU time over the device's share means the device was throttled,
	// waiting, or crowded off its CPU.
	CPU time.Duration `json:"cpu_ns,omitempty"`
	// ThreadCPU is, for a compute step of a single-threaded kernel pool,
	// the CPU time of the thread that ran it (Linux): the kernel's own,
	// without what the process's other threads (connections, runtime) did
	// meanwhile. Zero with several kernel threads.
	ThreadCPU time.Duration `json:"thread_cpu_ns,omitempty"`
}

// Runner executes one device's program; it holds the prepared kernels.
// A Runner serves one request at a time: its arena buffers are reused by
// every Run.
type Runner struct {
	prog    *Program
	kernels []ops.Kernel // per step (nil for non-compute and view steps)
	views   []bool
	arena   *Arena
	buffers [][]float32 // the arena's buffers
}

// NewRunner prepares every compute step of p.
func NewRunner(p *Program) (*Runner, error) {
	r := &Runner{prog: p, kernels: make([]ops.Kernel, len(p.Steps)), views: make([]bool, len(p.Steps))}
	for i, s := range p.Steps {
		if s.Kind != Compute {
			continue
		}
		def, ok := ops.Lookup(s.Node.Op)
		if !ok {
			return nil, fmt.Errorf("device %d: unsupported operator %s", p.Device, s.Node.Op)
		}
		if def.View {
			r.views[i] = true
			continue
		}
		in, outs := p.NodeIO(s.Node)
		k, err := def.Prepare(s.Node, p.Opset, in, outs)
		if err != nil {
			return nil, fmt.Errorf("device %d: %w", p.Device, err)
		}
		r.kernels[i] = k
	}
	r.arena = PlanArena(p)
	r.buffers = make([][]float32, len(r.arena.Sizes))
	for i, n := range r.arena.Sizes {
		r.buffers[i] = make([]float32, n)
	}
	return r, nil
}

// ArenaBytes is the memory of the runner's activation buffers.
func (r *Runner) ArenaBytes() int64 { return r.arena.Bytes() }

// newTensor returns local tensor name of shape sh: a view of its arena
// buffer (contents undefined) or, outside the arena, a new zeroed tensor.
func (r *Runner) newTensor(name string, dt tensor.DType, sh tensor.Shape) (t *tensor.Tensor, fresh bool) {
	if b, ok := r.arena.Buffer[name]; ok && dt == tensor.Float32 {
		return &tensor.Tensor{Shape: sh, DType: dt, F: r.buffers[b][:sh.Numel()]}, false
	}
	return tensor.New(dt, sh), true
}

// Program returns the program the runner executes.
func (r *Runner) Program() *Program { return r.prog }

// Run executes the program once. inputs holds the tensors of
// r.Program().Inputs in order; the result holds those of Outputs.
func (r *Runner) Run(ctx context.Context, pool *kernels.Pool, tr Transport, inputs []*tensor.Tensor) ([]*tensor.Tensor, []Event, error) {
	p := r.prog
	if len(inputs) != len(p.Inputs) {
		return nil, nil, fmt.Errorf("device %d: %d inputs, want %d", p.Device, len(inputs), len(p.Inputs))
	}
	vals := make(map[string]*tensor.Tensor, len(p.Values)+len(p.Consts))
	for name, t := range p.Consts {
		vals[name] = t
	}
	for i, in := range p.Inputs {
		if !inputs[i].Shape.Equal(in.Box.Shape()) {
			return nil, nil, fmt.Errorf("device %d: input %d has shape %v, want %v", p.Device, i, inputs[i].Shape, in.Box.Shape())
		}
		vals[in.Local] = inputs[i]
	}
	get := func(name string) (*tensor.Tensor, error) {
		t, ok := vals[name]
		if !ok {
			return nil, fmt.Errorf("device %d: local tensor %q is not available", p.Device, name)
		}
		return t, nil
	}
	t0, c0 := time.Now(), cputime.Process()
	events := make([]Event, 0, len(p.Steps))
	var ins, outs []*tensor.Tensor
	for i, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			return nil, events, err
		}
		ev := Event{Step: i, Kind: s.Kind.String(), Orig: s.Orig, Start: time.Since(t0)}
		switch s.Kind {
		case Compute:
			ev.Op = s.Node.Op
			ins = ins[:0]
			for _, name := range s.Node.Inputs {
				if name == "" {
					ins = append(ins, nil)
					continue
				}
				t, err := get(name)
				if err != nil {
					return nil, events, err
				}
				ins = append(ins, t)
			}
			if r.views[i] {
				vals[s.Node.Outputs[0]] = ins[0].Reshaped(p.Values[s.Node.Outputs[0]].Shape)
				break
			}
			outs = outs[:0]
			for _, name := range s.Node.Outputs {
				if name == "" {
					outs = append(outs, nil)
					continue
				}
				v := p.Values[name]
				t, _ := r.newTensor(name, v.DType, v.Shape)
				vals[name] = t
				outs = append(outs, t)
			}
			var err error
			if pool.Threads() == 1 {
				// The kernel runs on this goroutine alone: its thread's
				// CPU is the step's own.
				runtime.LockOSThread()
				tc := cputime.Thread()
				err = r.kernels[i].Run(pool, ins, outs)
				ev.ThreadCPU = cputime.Thread() - tc
				runtime.UnlockOSThread()
			} else {
				err = r.kernels[i].Run(pool, ins, outs)
			}
			if err != nil {
				return nil, events, fmt.Errorf("device %d: %v: %w", p.Device, s.Node, err)
			}
		case Alloc:
			t, fresh := r.newTensor(s.Dst, p.Values[s.Dst].DType, s.Shape)
			if !fresh {
				clear(t.F)
			}
			vals[s.Dst] = t
		case Copy:
			src, err := get(s.Src)
			if err != nil {
				return nil, events, err
			}
			dst, err := get(s.Dst)
			if err != nil {
				return nil, events, err
			}
			copyRegion(dst, s.DstBox, src, s.SrcBox, s.Add)
		case Send:
			src, err := get(s.Src)
			if err != nil {
				return nil, events, err
			}
			ev.Peer, ev.BytesOut = s.Peer, s.Bytes
			if err := tr.Send(ctx, s.Peer, s.Tag, Extract(src, s.SrcBox)); err != nil {
				return nil, events, fmt.Errorf("device %d: send to device %d: %w", p.Device, s.Peer, err)
			}
		case Recv:
			dst, err := get(s.Dst)
			if err != nil {
				return nil, events, err
			}
			ev.Peer, ev.BytesIn = s.Peer, s.Bytes
			t, err := tr.Recv(ctx, s.Peer, s.Tag)
			if err != nil {
				return nil, events, fmt.Errorf("device %d: receive from device %d: %w", p.Device, s.Peer, err)
			}
			if !t.Shape.Equal(s.DstBox.Shape()) {
				return nil, events, fmt.Errorf("device %d: received %v from device %d, expected %v", p.Device, t.Shape, s.Peer, s.DstBox.Shape())
			}
			copyRegion(dst, s.DstBox, t, Full(t.Shape), s.Add)
		case Free:
			for _, name := range s.Names {
				delete(vals, name)
			}
		}
		ev.End = time.Since(t0)
		c1 := cputime.Process()
		ev.CPU, c0 = c1-c0, c1
		events = append(events, ev)
	}
	res := make([]*tensor.Tensor, len(p.Outputs))
	for i, o := range p.Outputs {
		t, err := get(o.Local)
		if err != nil {
			return nil, events, err
		}
		res[i] = t
	}
	return res, events, nil
}

func copyRegion(dst *tensor.Tensor, dstBox Box, src *tensor.Tensor, srcBox Box, add bool) {
	if dst.DType == tensor.Float32 {
		CopyBox(dst, dstBox, src, srcBox, add)
		return
	}
	// Integer tensors: small; extract then place element-wise.
	part := Extract(src, srcBox)
	st := dst.Shape.Strides()
	ps := part.Shape.Strides()
	for i := 0; i < part.Len(); i++ {
		off, rem := 0, i
		for a := range dstBox {
			k := rem / max(ps[a], 1)
			rem -= k * ps[a]
			off += (dstBox[a].Lo + k) * st[a]
		}
		switch dst.DType {
		case tensor.Int64:
			if add {
				dst.I[off] += part.I[i]
			} else {
				dst.I[off] = part.I[i]
			}
		case tensor.Bool:
			dst.B[off] = part.B[i]
		}
	}
}

// SplitInputs cuts the graph inputs into each device's regions.
func (ps *Programs) SplitInputs(inputs []*tensor.Tensor) ([][]*tensor.Tensor, error) {
	if len(inputs) != len(ps.Inputs) {
		return nil, fmt.Errorf("model takes %d input(s), got %d", len(ps.Inputs), len(inputs))
	}
	for i, in := range ps.Inputs {
		if !inputs[i].Shape.Equal(in.Shape) || inputs[i].DType != in.DType {
			return nil, fmt.Errorf("input %q: %v%v, the plan expects %v%v", in.Name, inputs[i].DType, inputs[i].Shape, in.DType, in.Shape)
		}
	}
	out := make([][]*tensor.Tensor, len(ps.Devices))
	for d, p := range ps.Devices {
		for _, s := range p.Inputs {
			out[d] = append(out[d], Extract(inputs[s.Index], s.Box))
		}
	}
	return out, nil
}

// AssembleOutputs builds the graph outputs from each device's output
// regions.
func (ps *Programs) AssembleOutputs(perDevice [][]*tensor.Tensor) ([]*tensor.Tensor, error) {
	res := make([]*tensor.Tensor, len(ps.Outputs))
	covered := make([]int, len(ps.Outputs))
	for i, o := range ps.Outputs {
		res[i] = tensor.New(o.DType, o.Shape)
	}
	for d, p := range ps.Devices {
		if len(perDevice[d]) != len(p.Outputs) {
			return nil, fmt.Errorf("device %d returned %d outputs, want %d", d, len(perDevice[d]), len(p.Outputs))
		}
		for k, s := range p.Outputs {
			t := perDevice[d][k]
			if !t.Shape.Equal(s.Box.Shape()) {
				return nil, fmt.Errorf("device %d returned output %d with shape %v, want %v", d, s.Index, t.Shape, s.Box.Shape())
			}
			copyRegion(res[s.Index], s.Box, t, Full(t.Shape), false)
			covered[s.Index] += s.Box.Numel()
		}
	}
	for i, o := range ps.Outputs {
		if covered[i] != o.Shape.Numel() {
			return nil, fmt.Errorf("output %q: devices returned %d of %d elements", o.Name, covered[i], o.Shape.Numel())
		}
	}
	return res, nil
}

// memTransport is an in-memory Transport between goroutines.
type memTransport struct {
	mu    sync.Mutex
	cond  *sync.Cond
	boxes map[[3]int]*tensor.Tensor // (from, to, tag)
}

type memEndpoint struct {
	t    *memTransport
	self int
}

func (e memEndpoint) Send(ctx context.Context, peer, tag int, t *tensor.Tensor) error {
	e.t.mu.Lock()
	e.t.boxes[[3]int{e.self, peer, tag}] = t
	e.t.mu.Unlock()
	e.t.cond.Broadcast()
	return nil
}

func (e memEndpoint) Recv(ctx context.Context, peer, tag int) (*tensor.Tensor, error) {
	k := [3]int{peer, e.self, tag}
	e.t.mu.Lock()
	defer e.t.mu.Unlock()
	for {
		if t, ok := e.t.boxes[k]; ok {
			delete(e.t.boxes, k)
			return t, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e.t.cond.Wait()
	}
}

// RunInProcess runs all device programs in goroutines of this process with
// an in-memory transport. It is for tests and quick checks; the real
// runtime runs each program in its own worker process over TCP.
func RunInProcess(ctx context.Context, ps *Programs, inputs []*tensor.Tensor, threadsPerDevice int) ([]*tensor.Tensor, error) {
	ip, err := NewInProcess(ps)
	if err != nil {
		return nil, err
	}
	return ip.Run(ctx, inputs, threadsPerDevice)
}

// InProcess holds one Runner per device program, so that several requests
// run on the same prepared kernels and arenas, as on deployed workers.
type InProcess struct {
	ps      *Programs
	runners []*Runner
}

// NewInProcess prepares every device program of ps.
func NewInProcess(ps *Programs) (*InProcess, error) {
	ip := &InProcess{ps: ps, runners: make([]*Runner, len(ps.Devices))}
	for d, p := range ps.Devices {
		var err error
		if ip.runners[d], err = NewRunner(p); err != nil {
			return nil, err
		}
	}
	return ip, nil
}

// Run runs one request (see RunInProcess); calls must not overlap.
func (ip *InProcess) Run(ctx context.Context, inputs []*tensor.Tensor, threadsPerDevice int) ([]*tensor.Tensor, error) {
	ps := ip.ps
	parts, err := ps.SplitInputs(inputs)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mt := &memTransport{boxes: map[[3]int]*tensor.Tensor{}}
	mt.cond = sync.NewCond(&mt.mu)
	// Wake blocked receivers when the context ends.
	stop := context.AfterFunc(ctx, func() { mt.cond.Broadcast() })
	defer stop()
	outs := make([][]*tensor.Tensor, len(ps.Devices))
	errs := make([]error, len(ps.Devices))
	var wg sync.WaitGroup
	for d := range ps.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool := kernels.NewPool(threadsPerDevice)
			defer pool.Close()
			outs[d], _, errs[d] = ip.runners[d].Run(ctx, pool, memEndpoint{t: mt, self: d}, parts[d])
			if errs[d] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil && e != context.Canceled {
			return nil, e
		}
	}
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	return ps.AssembleOutputs(outs)
}
