package ops

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// TestNoPanic throws random inputs, shapes, types and attributes at every
// registered operator: Infer may reject them, but nothing may panic, and
// whatever Infer accepts must Prepare and Run without panicking.
func TestNoPanic(t *testing.T) {
	seed, iters := int64(42), 400
	if v, err := strconv.Atoi(os.Getenv("IOP_OPS_FUZZ")); err == nil && v > 0 {
		seed, iters = time.Now().UnixNano(), v
	}
	r := rand.New(rand.NewSource(seed))
	shapes := []tensor.Shape{{}, {1}, {0}, {3}, {2, 3}, {1, 3, 1, 1}, {1, 3, 4, 4}, {2, 3, 5, 5}, {1, 1, 1, 2, 2}, {4, 1}, {3, 0, 2}, {6}, {1, 2}}
	intVals := []int64{0, 1, -1, 2, 3, -3, 4, math.MaxInt64, math.MinInt64, 100, -100}
	attrVals := []graph.Attr{
		{Kind: graph.AttrInt, Int: 0}, {Kind: graph.AttrInt, Int: 1}, {Kind: graph.AttrInt, Int: -1},
		{Kind: graph.AttrInt, Int: 3}, {Kind: graph.AttrInt, Int: 1 << 40}, {Kind: graph.AttrInt, Int: -5},
		{Kind: graph.AttrInts, Ints: []int64{1}}, {Kind: graph.AttrInts, Ints: []int64{2, 2}},
		{Kind: graph.AttrInts, Ints: []int64{0, 0, 0, 0}}, {Kind: graph.AttrInts, Ints: []int64{-1, 5}},
		{Kind: graph.AttrInts, Ints: []int64{3, 3}}, {Kind: graph.AttrInts, Ints: []int64{1, 1, 1, 1}},
		{Kind: graph.AttrInts, Ints: []int64{}}, {Kind: graph.AttrInts, Ints: []int64{0, 2, 1}},
		{Kind: graph.AttrFloat, Float: 0.5}, {Kind: graph.AttrFloat, Float: float32(math.NaN())},
		{Kind: graph.AttrString, String: "SAME_UPPER"}, {Kind: graph.AttrString, String: "VALID"},
		{Kind: graph.AttrString, String: "reflect"}, {Kind: graph.AttrString, String: "edge"}, {Kind: graph.AttrString, String: "bogus"},
		{Kind: graph.AttrTensor, Tensor: ints(3)}, {Kind: graph.AttrTensor, Tensor: f32(tensor.Shape{2}, 1, 2)},
	}
	attrNames := []string{"axis", "axes", "perm", "kernel_shape", "strides", "pads", "dilations", "group", "auto_pad",
		"ceil_mode", "count_include_pad", "keepdims", "split", "num_outputs", "to", "mode", "value", "starts", "ends",
		"transA", "transB", "alpha", "beta", "allowzero", "start", "end", "size", "noop_with_empty_axes", "min", "max",
		"epsilon", "value_int", "value_ints", "value_float", "shape", graph.FusedActivation}
	mkT := func() *tensor.Tensor {
		s := shapes[r.Intn(len(shapes))]
		switch r.Intn(4) {
		case 0, 1:
			x := randT(r, s...)
			return x
		case 2:
			x := tensor.New(tensor.Int64, s)
			for i := range x.I {
				x.I[i] = intVals[r.Intn(len(intVals))]
			}
			return x
		default:
			x := tensor.New(tensor.Bool, s)
			for i := range x.B {
				x.B[i] = r.Intn(2) == 0
			}
			return x
		}
	}
	names := Supported()
	sort.Strings(names)
	for _, op := range names {
		d, _ := Lookup(op)
		for iter := 0; iter < iters; iter++ {
			nin := r.Intn(6)
			nout := 1 + r.Intn(3)
			if r.Intn(3) > 0 {
				nout = 1
			}
			n := node(op, nin, nout)
			for k := r.Intn(4); k > 0; k-- {
				n.Attrs[attrNames[r.Intn(len(attrNames))]] = attrVals[r.Intn(len(attrVals))]
			}
			in := make([]Input, nin)
			ts := make([]*tensor.Tensor, nin)
			for i := range in {
				if i > 0 && r.Intn(6) == 0 {
					n.Inputs[i] = ""
					continue
				}
				x := mkT()
				in[i] = Input{ValueInfo: graph.ValueInfo{Name: n.Inputs[i], DType: x.DType, Shape: x.Shape}, Present: true}
				if r.Intn(2) == 0 {
					in[i].Const = x
				}
				ts[i] = x
			}
			opset := []int64{7, 9, 11, 13, 15, 18, 21}[r.Intn(7)]
			desc := fmt.Sprintf("seed %d: %s opset %d attrs %v inputs %v", seed, op, opset, n.Attrs, in)
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panic: %v\n%s", p, desc)
					}
				}()
				vi, err := d.Infer(n, opset, in)
				if err != nil {
					return
				}
				total := 0
				for _, v := range vi {
					total += v.Shape.Numel()
					for _, dd := range v.Shape {
						if dd < 0 {
							t.Fatalf("negative output dimension %v\n%s", v.Shape, desc)
						}
					}
				}
				if total > 1<<20 {
					return
				}
				d.FLOPs(n, in, vi)
				k, err := d.Prepare(n, opset, in, vi)
				if err != nil {
					return
				}
				outs := make([]*tensor.Tensor, len(vi))
				for i, v := range vi {
					outs[i] = tensor.New(v.DType, v.Shape)
				}
				_ = k.Run(testPool, ts, outs)
			}()
		}
	}
}
