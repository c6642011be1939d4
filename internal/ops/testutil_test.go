package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

var testPool = kernels.NewPool(2)

// node builds a node with inputs in0, in1, ... and outputs y0, y1, ...
func node(op string, nin, nout int) *graph.Node {
	n := &graph.Node{Name: "t_" + op, Op: op, Attrs: map[string]graph.Attr{}}
	for i := 0; i < nin; i++ {
		n.Inputs = append(n.Inputs, fmt.Sprintf("in%d", i))
	}
	for i := 0; i < nout; i++ {
		n.Outputs = append(n.Outputs, fmt.Sprintf("y%d", i))
	}
	return n
}

// arg is one test input: nil marks an omitted optional input.
type arg struct {
	t     *tensor.Tensor
	konst bool
}

// C marks a constant input; V a runtime one.
func C(t *tensor.Tensor) arg { return arg{t, true} }
func V(t *tensor.Tensor) arg { return arg{t, false} }

// none is an omitted optional input.
var none = arg{}

// exec infers, prepares and runs n, converting a panic into a test
// failure.
func exec(t *testing.T, n *graph.Node, opset int64, args ...arg) (outs []*tensor.Tensor, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s panicked: %v", n.Op, r)
		}
	}()
	d, ok := Lookup(n.Op)
	if !ok {
		t.Fatalf("operator %s not registered", n.Op)
	}
	in := make([]Input, len(args))
	ts := make([]*tensor.Tensor, len(args))
	for i, a := range args {
		if a.t == nil {
			if i < len(n.Inputs) {
				n.Inputs[i] = ""
			}
			continue
		}
		in[i] = Input{ValueInfo: graph.ValueInfo{Name: fmt.Sprintf("in%d", i), DType: a.t.DType, Shape: a.t.Shape}, Present: true}
		if a.konst {
			in[i].Const = a.t
		}
		ts[i] = a.t
	}
	vi, err := d.Infer(n, opset, in)
	if err != nil {
		return nil, err
	}
	if len(vi) == 0 {
		t.Fatalf("%s: Infer returned no outputs", n.Op)
	}
	k, err := d.Prepare(n, opset, in, vi)
	if err != nil {
		return nil, err
	}
	if d.FLOPs != nil {
		if f := d.FLOPs(n, in, vi); f < 0 {
			t.Errorf("%s: negative FLOPs %d", n.Op, f)
		}
	}
	outs = make([]*tensor.Tensor, len(vi))
	for i, v := range vi {
		outs[i] = tensor.New(v.DType, v.Shape)
	}
	if err := k.Run(testPool, ts, outs); err != nil {
		return nil, err
	}
	return outs, nil
}

// run1 is exec for a single-output node that must succeed.
func run1(t *testing.T, n *graph.Node, opset int64, args ...arg) *tensor.Tensor {
	t.Helper()
	outs, err := exec(t, n, opset, args...)
	if err != nil {
		t.Fatalf("%s: %v", n.Op, err)
	}
	return outs[0]
}

// mustFail checks that the node is rejected with an error mentioning want.
func mustFail(t *testing.T, n *graph.Node, opset int64, want string, args ...arg) {
	t.Helper()
	_, err := exec(t, n, opset, args...)
	if err == nil {
		t.Fatalf("%s: expected an error containing %q", n.Op, want)
	}
	if want != "" && !contains(err.Error(), want) {
		t.Fatalf("%s: error %q does not mention %q", n.Op, err, want)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func f32(shape tensor.Shape, v ...float32) *tensor.Tensor { return tensor.FromFloat32(shape, v) }
func i64(shape tensor.Shape, v ...int64) *tensor.Tensor   { return tensor.FromInt64(shape, v) }
func ints(v ...int64) *tensor.Tensor                      { return tensor.FromInt64(tensor.Shape{len(v)}, v) }
func scalarF(v float32) *tensor.Tensor                    { return tensor.FromFloat32(tensor.Shape{}, []float32{v}) }

// randT returns a tensor of uniform values in [-1, 1).
func randT(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape)
	for i := range t.F {
		t.F[i] = r.Float32()*2 - 1
	}
	return t
}

func near(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	if err := tensor.AllClose(got, want, 1e-4, 1e-5); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func setInts(n *graph.Node, name string, v ...int) *graph.Node { n.SetInts(name, v...); return n }

// refBroadcast applies f elementwise with numpy broadcasting (reference).
func refBroadcast(a, b *tensor.Tensor, f func(x, y float64) float64) *tensor.Tensor {
	out, err := broadcastShapes(&graph.Node{}, a.Shape, b.Shape)
	if err != nil {
		panic(err)
	}
	o := tensor.New(a.DType, out)
	forEachIndex(out, [][]int{bstrides(a.Shape, out), bstrides(b.Shape, out)}, func(i int, offs []int) {
		if a.DType == tensor.Int64 {
			o.I[i] = int64(f(float64(a.I[offs[0]]), float64(b.I[offs[1]])))
		} else {
			o.F[i] = float32(f(float64(a.F[offs[0]]), float64(b.F[offs[1]])))
		}
	})
	return o
}

var _ = math.Inf
