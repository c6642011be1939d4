package profile

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/tensor"
)

// A model's own layers, timed on each device (as Neurosurgeon and CoEdge
// profile theirs), calibrate the per-class time model: the class model
// prices an 11×11 stride-4 convolution or a local response normalization
// like any layer of its class with the same FLOPs and bytes, and misses by
// tens of percent on whole models (docs/VALIDATION.md). The device makes
// up the weights (their values do not change the time); the layer list
// carries only nodes, shapes and the few small constants whose values
// matter (a Reshape's shape, a Clip's bounds).

// LayerSpec is one distinct layer of a model as a device times it.
type LayerSpec struct {
	Node   *partition.NodeSpec `json:"node"`
	Opset  int64               `json:"opset"`
	Inputs []LayerInput        `json:"inputs"`
}

// LayerInput is one input of a LayerSpec.
type LayerInput struct {
	Present bool         `json:"present"`
	DType   tensor.DType `json:"dtype"`
	Shape   tensor.Shape `json:"shape"`
	// Const marks a weight (made up on the device) or, with Value, a small
	// constant whose values are used as they are.
	Const bool                  `json:"const,omitempty"`
	Value *partition.TensorSpec `json:"value,omitempty"`
}

// smallConst is the largest constant sent with its values.
const smallConst = 4096

// LayersRequest asks a device to time a model's layers.
type LayersRequest struct {
	Layers []LayerSpec `json:"layers"`
	// Threads for the kernels (0: GOMAXPROCS, what the worker uses).
	Threads int `json:"threads,omitempty"`
	// BudgetMS is the measuring time (0: DefaultLayersBudget).
	BudgetMS int64 `json:"budget_ms,omitempty"`
	// MaxBytes bounds the inputs, weights and outputs held at once
	// (0: DefaultLayersMaxBytes); layers beyond it are not timed.
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// DefaultLayersBudget is the measuring time of MeasureLayers when none is
// given.
const DefaultLayersBudget = 3 * time.Second

// DefaultLayersMaxBytes is the memory MeasureLayers holds at most when
// none is given.
const DefaultLayersMaxBytes = 256 << 20

// LayersResult is the time of each requested layer.
type LayersResult struct {
	// MS is the time per run of each layer (0: not timed, too large),
	// under the device's CPU quota if it has one.
	MS []float64 `json:"ms"`
	// Share is the cores the process got while timing (CPU time over
	// wall time).
	Share  float64 `json:"share"`
	WallMS float64 `json:"wall_ms"`
}

// ModelLayers returns the distinct compute layers of g (inferred) and, for
// each compute node, the index of its layer. Shape-only operators (views,
// no FLOPs) are left out.
func ModelLayers(g *graph.Graph) ([]LayerSpec, map[string]int) {
	var specs []LayerSpec
	index := map[string]int{}
	seen := map[string]int{}
	for _, n := range g.Nodes {
		d, ok := ops.Lookup(n.Op)
		if !ok || d.View || d.FLOPs == nil {
			continue
		}
		in := ops.InputsOf(g, n)
		if d.FLOPs(n, in, ops.OutputsOf(g, n)) <= 0 {
			continue
		}
		ls := LayerSpec{Node: partition.NodeSpecOf(n), Opset: g.Opset}
		for _, x := range in {
			li := LayerInput{Present: x.Present, DType: x.DType, Shape: x.Shape, Const: x.Const != nil}
			if x.Const != nil && x.Const.Bytes() <= smallConst && x.DType != tensor.Float32 {
				li.Value = partition.TensorSpecOf(x.Const)
			}
			ls.Inputs = append(ls.Inputs, li)
		}
		key := layerKey(ls)
		i, dup := seen[key]
		if !dup {
			i = len(specs)
			seen[key] = i
			specs = append(specs, ls)
		}
		index[n.Name] = i
	}
	return specs, index
}

// layerKey identifies a layer by everything but its names.
func layerKey(ls LayerSpec) string {
	n := *ls.Node
	n.Name, n.Inputs, n.Outputs = "", nil, nil
	b, _ := json.Marshal(struct {
		N  partition.NodeSpec
		O  int64
		In []LayerInput
	}{n, ls.Opset, ls.Inputs})
	return string(b)
}

// MeasureLayers times the requested layers on this machine: each is built
// with made-up weights and run in model order, round after round, for the
// budget (at least three rounds); a layer's time is its share of the wall
// time by CPU time (see timeLayers).
func MeasureLayers(ctx context.Context, req LayersRequest) (*LayersResult, error) {
	budget := time.Duration(req.BudgetMS) * time.Millisecond
	if budget <= 0 {
		budget = DefaultLayersBudget
	}
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultLayersMaxBytes
	}
	start := time.Now()
	var ps []*prepared
	var at []int // request index of each prepared layer
	var held int64
	for i, ls := range req.Layers {
		l, size, err := buildLayer(ls, i)
		if err != nil {
			return nil, err
		}
		if held+size > maxBytes {
			continue
		}
		p, err := prepare(l)
		if err != nil {
			return nil, err
		}
		held += size
		ps = append(ps, p)
		at = append(at, i)
	}
	res := &LayersResult{MS: make([]float64, len(req.Layers))}
	if len(ps) == 0 {
		return res, nil
	}
	chain(ps)
	pool := kernels.NewPool(req.Threads)
	defer pool.Close()
	for _, p := range ps { // warm-up: page faults, packing scratch
		if err := p.kern.Run(pool, p.in, p.outs); err != nil {
			return nil, fmt.Errorf("profile: %s: %w", p.name, err)
		}
	}
	tm, err := timeLayers(ctx, pool, ps, budget, 3)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		res.MS[i] = tm.sec[j] * 1e3
	}
	res.Share = round3(tm.share)
	res.WallMS = time.Since(start).Seconds() * 1e3
	return res, nil
}

// chain feeds each layer the tensor the layer before it wrote, where the
// first activation input has that tensor's shape, as a model's layers feed
// each other: a layer then reads its input from the cache the previous
// one left it in, as in the model (MobileNetV2's layers on the testbed
// used 0.8 of the CPU time they measured on inputs of their own).
func chain(ps []*prepared) {
	for j := 1; j < len(ps); j++ {
		prev := ps[j-1].outs
		if len(prev) == 0 || prev[0] == nil {
			continue
		}
		for i, t := range ps[j].in {
			if t == nil || ps[j].konst[i] {
				continue
			}
			if t.DType == prev[0].DType && t.Shape.Equal(prev[0].Shape) {
				ps[j].in[i] = prev[0]
			}
			break
		}
	}
}

// buildLayer makes a runnable layer of ls with deterministic inputs and
// weights. size estimates the bytes it will hold: its inputs and weights,
// and as much again for its outputs and the kernels' packed copies (the
// output shapes are known only once prepare infers them).
func buildLayer(ls LayerSpec, i int) (layer, int64, error) {
	if ls.Node == nil {
		return layer{}, 0, fmt.Errorf("profile: layer %d has no node", i)
	}
	n, err := ls.Node.Node()
	if err != nil {
		return layer{}, 0, fmt.Errorf("profile: layer %d: %w", i, err)
	}
	if len(ls.Inputs) != len(n.Inputs) {
		return layer{}, 0, fmt.Errorf("profile: layer %d (%s %s): %d input descriptions for %d inputs", i, n.Op, n.Name, len(ls.Inputs), len(n.Inputs))
	}
	d, ok := ops.Lookup(n.Op)
	if !ok {
		return layer{}, 0, fmt.Errorf("profile: layer %d: operator %s is not registered", i, n.Op)
	}
	l := layer{name: n.Name, node: n, opset: ls.Opset}
	var size int64
	for k, x := range ls.Inputs {
		if !x.Present {
			n.Inputs[k] = ""
			l.in = append(l.in, nil)
			l.konst = append(l.konst, false)
			continue
		}
		var t *tensor.Tensor
		switch {
		case x.Value != nil:
			t, err = x.Value.Tensor()
			if err != nil {
				return layer{}, 0, fmt.Errorf("profile: layer %d (%s %s) input %d: %w", i, n.Op, n.Name, k, err)
			}
		case x.DType == tensor.Float32:
			if x.Shape.Numel() < 0 {
				return layer{}, 0, fmt.Errorf("profile: layer %d (%s %s) input %d: bad shape %v", i, n.Op, n.Name, k, x.Shape)
			}
			t = rnd(x.Shape...)
			if x.Const {
				// Weights in [0.5, 1.5): positive where a variance or a
				// divisor must be, finite everywhere.
				for j := range t.F {
					t.F[j] = t.F[j]*0.5 + 1
				}
			}
		default:
			t = tensor.New(x.DType, x.Shape)
		}
		size += 2 * t.Bytes()
		l.in = append(l.in, t)
		l.konst = append(l.konst, x.Const)
	}
	l.class = d.ClassFor(n, layerInputs(l))
	return l, size, nil
}

// layerInputs describes l's inputs as ops.Input.
func layerInputs(l layer) []ops.Input {
	in := make([]ops.Input, len(l.in))
	for i, t := range l.in {
		if t == nil {
			continue
		}
		in[i] = ops.Input{ValueInfo: graph.ValueInfo{Name: l.node.Inputs[i], DType: t.DType, Shape: t.Shape}, Present: true}
		if l.konst[i] {
			in[i].Const = t
		}
	}
	return in
}

// Layers asks the device to time a model's layers.
func (c *Client) Layers(ctx context.Context, req LayersRequest) (*LayersResult, error) {
	r, err := c.Do(ctx, Request{Type: "bench-layers", Layers: &req})
	if err != nil {
		return nil, err
	}
	if r.Layers == nil || len(r.Layers.MS) != len(req.Layers) {
		return nil, fmt.Errorf("profile %s: bad bench-layers reply", c.Addr)
	}
	return r.Layers, nil
}
