// Package plan holds the partitioning plan: for every operator of a model,
// which layout its output takes across the devices (and so which scheme
// computes it), and for every edge which layout the consumer reads. A plan is
// a versioned JSON file that a person can read; see docs/PLAN_FORMAT.md.
package plan

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/tensor"
)

// Kind is a layout kind (DESIGN.md §3).
type Kind string

// Layout kinds.
const (
	// R: every device holds the whole tensor.
	R Kind = "R"
	// S: one device (Layout.Device) holds the whole tensor.
	S Kind = "S"
	// C: device i holds channels [Splits[i], Splits[i+1]) (axis 1).
	C Kind = "C"
	// H: device i holds rows [Splits[i], Splits[i+1]) (axis 2).
	H Kind = "H"
	// P: participating devices each hold a full-shape partial sum; the value
	// is their sum.
	P Kind = "P"
)

// Layout is how one tensor is spread over the devices.
type Layout struct {
	Kind   Kind  `json:"kind"`
	Device int   `json:"device,omitempty"`
	Splits []int `json:"splits,omitempty"`
}

// Axis is the tensor axis a C or H layout splits (-1 for others).
func (l Layout) Axis() int {
	switch l.Kind {
	case C:
		return 1
	case H:
		return 2
	}
	return -1
}

// Equal reports whether two layouts are identical.
func (l Layout) Equal(o Layout) bool {
	if l.Kind != o.Kind || l.Device != o.Device || len(l.Splits) != len(o.Splits) {
		return false
	}
	for i := range l.Splits {
		if l.Splits[i] != o.Splits[i] {
			return false
		}
	}
	return true
}

func (l Layout) String() string {
	switch l.Kind {
	case S:
		return fmt.Sprintf("S(%d)", l.Device)
	case C, H:
		return fmt.Sprintf("%s%v", l.Kind, l.Splits)
	}
	return string(l.Kind)
}

// Replicated is the R layout.
func Replicated() Layout { return Layout{Kind: R} }

// Single is the S(d) layout.
func Single(d int) Layout { return Layout{Kind: S, Device: d} }

// Split returns a C or H layout with the given boundaries.
func Split(k Kind, splits []int) Layout {
	return Layout{Kind: k, Splits: append([]int(nil), splits...)}
}

// Partial is the P layout.
func Partial() Layout { return Layout{Kind: P} }

// NodePlan is how one operator is computed.
type NodePlan struct {
	// Node is the operator's node name in the optimized graph.
	Node string `json:"node"`
	Op   string `json:"op"`
	// Scheme names the partitioning scheme (OC, IC, SP, REPL, LOCAL,
	// FOLLOW…); informational, the layouts below are what count.
	Scheme string `json:"scheme"`
	// Out is the layout the output is produced in. Each device computes its
	// own region of the output ("owner computes"); the input regions it needs
	// follow from the operator. P means the input-channel (IC) scheme.
	Out Layout `json:"out"`
	// In, for the IC scheme only, is the C layout input 0 is read in (its
	// splits are the input-channel ranges); nil otherwise.
	In *Layout `json:"in,omitempty"`
	// Via optionally routes input i through a layout before it is read
	// (e.g. R: gather the whole tensor first, as the hp baseline does).
	Via []*Layout `json:"via,omitempty"`
	// Prediction for this operator (filled by the cost model).
	ComputeMS []float64 `json:"compute_ms,omitempty"`
	CommMS    float64   `json:"comm_ms,omitempty"`
}

// Model identifies the model a plan was made for.
type Model struct {
	Name   string                  `json:"name"`
	Hash   string                  `json:"hash"`
	Inputs map[string]tensor.Shape `json:"inputs"`
}

// DevicePrediction is the predicted load of one device.
type DevicePrediction struct {
	Name            string  `json:"name"`
	ComputeMS       float64 `json:"compute_ms"`
	BytesSent       int64   `json:"bytes_sent"`
	BytesReceived   int64   `json:"bytes_received"`
	WeightBytes     int64   `json:"weight_bytes"`
	PeakMemoryBytes int64   `json:"peak_memory_bytes"`
}

// Prediction is the cost model's forecast for a plan.
type Prediction struct {
	LatencyMS float64            `json:"latency_ms"`
	ComputeMS float64            `json:"compute_ms"` // on the critical path
	CommMS    float64            `json:"comm_ms"`    // on the critical path
	BytesSent int64              `json:"bytes_sent"`
	Messages  int                `json:"messages"`
	Devices   []DevicePrediction `json:"devices"`
}

// Format and Version identify the plan file format.
const (
	Format  = "iop-plan"
	Version = 1
)

// Plan is a complete partitioning of one model on one cluster.
type Plan struct {
	Format   string        `json:"format"`
	Version  int           `json:"version"`
	Strategy string        `json:"strategy"`
	Model    Model         `json:"model"`
	Cluster  *cluster.Spec `json:"cluster"`
	// Inputs is the layout each graph input is delivered in.
	Inputs []Layout `json:"inputs"`
	// Outputs is the layout each graph output is collected from (nil: the
	// layout its producer leaves it in).
	Nodes      []NodePlan  `json:"nodes"`
	Prediction *Prediction `json:"prediction,omitempty"`
}

// Save writes p as indented JSON.
func (p *Plan) Save(path string) error {
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Load reads a plan file and checks its format and version.
func Load(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: not a plan file: %w", path, err)
	}
	if p.Format != Format {
		return nil, fmt.Errorf("%s: not a plan file (format %q, want %q)", path, p.Format, Format)
	}
	if p.Version != Version {
		return nil, fmt.Errorf("%s: plan format version %d is not supported (this iop reads version %d)", path, p.Version, Version)
	}
	if p.Cluster == nil {
		return nil, fmt.Errorf("%s: plan has no cluster", path)
	}
	if err := p.Cluster.Validate(); err != nil {
		return nil, fmt.Errorf("%s: cluster: %w", path, err)
	}
	return &p, nil
}

// MarshalJSON writes the device only for S layouts and the splits only for
// C and H layouts.
func (l Layout) MarshalJSON() ([]byte, error) {
	switch l.Kind {
	case S:
		return json.Marshal(struct {
			Kind   Kind `json:"kind"`
			Device int  `json:"device"`
		}{l.Kind, l.Device})
	case C, H:
		return json.Marshal(struct {
			Kind   Kind  `json:"kind"`
			Splits []int `json:"splits"`
		}{l.Kind, l.Splits})
	}
	return json.Marshal(struct {
		Kind Kind `json:"kind"`
	}{l.Kind})
}
