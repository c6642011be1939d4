package partition

import (
	"fmt"

	"github.com/iop-edge/iop/internal/ops"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// StepKind says what a program step does.
type StepKind int

// Step kinds.
const (
	// Compute runs Node (whose inputs and outputs are local tensor names).
	Compute StepKind = iota + 1
	// Alloc creates local tensor Dst of shape Shape, zero-filled.
	Alloc
	// Copy copies (or, with Add, adds) region SrcBox of local tensor Src
	// into region DstBox of local tensor Dst.
	Copy
	// Send sends region SrcBox of local tensor Src to device Peer.
	Send
	// Recv receives a region from device Peer into region DstBox of local
	// tensor Dst (adding with Add).
	Recv
	// Free releases local tensors Names.
	Free
)

func (k StepKind) String() string {
	return [...]string{"?", "compute", "alloc", "copy", "send", "recv", "free"}[k]
}

// Step is one instruction of a device program.
type Step struct {
	Kind StepKind `json:"kind"`
	// Node is the local operator of a Compute step.
	Node *graph.Node `json:"-"`
	// Orig is the name of the model node a Compute step computes (part of).
	Orig string `json:"orig,omitempty"`
	// Transfers.
	Peer   int          `json:"peer,omitempty"`
	Tag    int          `json:"tag,omitempty"`
	Src    string       `json:"src,omitempty"`
	SrcBox Box          `json:"src_box,omitempty"`
	Dst    string       `json:"dst,omitempty"`
	DstBox Box          `json:"dst_box,omitempty"`
	Add    bool         `json:"add,omitempty"`
	Shape  tensor.Shape `json:"shape,omitempty"`
	Names  []string     `json:"names,omitempty"`
	// Bytes moved by a Send/Recv/Copy.
	Bytes int64 `json:"bytes,omitempty"`
	// Transition groups the transfers of one layout change (for reports).
	Transition int `json:"transition,omitempty"`
}

// IOSlice maps part of a graph input or output to a local tensor.
type IOSlice struct {
	Index int    `json:"index"`
	Local string `json:"local"`
	Box   Box    `json:"box"`
}

// Program is what one device runs for each request.
type Program struct {
	Device int
	Name   string
	Opset  int64
	Steps  []Step
	// Consts are the device's weight shards, by local name.
	Consts map[string]*tensor.Tensor
	// Values are the shapes of every local tensor.
	Values map[string]graph.ValueInfo
	// Inputs are the graph-input regions the coordinator sends this device.
	Inputs []IOSlice
	// Outputs are the graph-output regions this device returns.
	Outputs []IOSlice
}

// WeightBytes is the size of the device's weight shards.
func (p *Program) WeightBytes() int64 {
	var b int64
	for _, t := range p.Consts {
		b += t.Bytes()
	}
	return b
}

// Programs is the compiled form of a plan: one program per device plus what
// the coordinator needs to split inputs and assemble outputs.
type Programs struct {
	Devices []*Program
	// Inputs and Outputs describe the graph's inputs and outputs.
	Inputs  []graph.ValueInfo
	Outputs []graph.ValueInfo
	// Transitions counts the layout changes compiled.
	Transitions int
}

// String summarizes a program.
func (p *Program) String() string {
	counts := map[StepKind]int{}
	for _, s := range p.Steps {
		counts[s.Kind]++
	}
	return fmt.Sprintf("device %d (%s): %d compute, %d send, %d recv, %d copy; weights %d B",
		p.Device, p.Name, counts[Compute], counts[Send], counts[Recv], counts[Copy], p.WeightBytes())
}

// NodeIO describes a local node's inputs (with constant values where the
// input is a weight shard) and outputs from the program's tensors.
func (p *Program) NodeIO(n *graph.Node) ([]ops.Input, []graph.ValueInfo) {
	in := make([]ops.Input, len(n.Inputs))
	for k, name := range n.Inputs {
		if name == "" {
			continue
		}
		in[k].Present = true
		if t, ok := p.Consts[name]; ok {
			in[k].ValueInfo = graph.ValueInfo{Name: name, DType: t.DType, Shape: t.Shape}
			in[k].Const = t
		} else {
			in[k].ValueInfo = p.Values[name]
		}
	}
	outs := make([]graph.ValueInfo, len(n.Outputs))
	for k, name := range n.Outputs {
		outs[k] = p.Values[name]
	}
	return in, outs
}
