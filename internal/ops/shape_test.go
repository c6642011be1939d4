package ops

import (
	"math"
	"math/rand"
	"testing"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

func seq(shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape)
	for i := range t.F {
		t.F[i] = float32(i)
	}
	return t
}

func wantShape(t *testing.T, what string, got *tensor.Tensor, want ...int) {
	t.Helper()
	if !got.Shape.Equal(want) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, tensor.Shape(want))
	}
}

func TestReshapeFlattenSqueeze(t *testing.T) {
	x := seq(2, 3, 4)
	for _, tc := range []struct {
		spec      []int64
		allowZero bool
		want      []int
	}{
		{[]int64{4, 6}, false, []int{4, 6}},
		{[]int64{-1}, false, []int{24}},
		{[]int64{0, -1}, false, []int{2, 12}},
		{[]int64{0, 0, 2, 2}, false, []int{2, 3, 2, 2}},
		{[]int64{2, 0, 4, 1}, false, []int{2, 3, 4, 1}},
		{[]int64{-1, 2, 3}, false, []int{4, 2, 3}},
	} {
		n := node("Reshape", 2, 1)
		if tc.allowZero {
			n.SetInt("allowzero", 1)
		}
		got := run1(t, n, 14, V(x), C(ints(tc.spec...)))
		wantShape(t, "reshape", got, tc.want...)
		if err := tensor.AllClose(got.Reshaped(x.Shape), x, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	// allowzero: a 0 is a real zero-size dimension
	az := node("Reshape", 2, 1)
	az.SetInt("allowzero", 1)
	wantShape(t, "allowzero", run1(t, az, 14, V(tensor.New(tensor.Float32, tensor.Shape{0, 3, 4})), C(ints(3, 4, 0))), 3, 4, 0)
	mustFail(t, az, 14, "both 0 and -1", V(tensor.New(tensor.Float32, tensor.Shape{0, 3})), C(ints(0, -1)))
	mustFail(t, node("Reshape", 2, 1), 14, "more than one -1", V(x), C(ints(-1, -1)))
	mustFail(t, node("Reshape", 2, 1), 14, "cannot reshape", V(x), C(ints(5, -1)))
	mustFail(t, node("Reshape", 2, 1), 14, "cannot reshape", V(x), C(ints(5, 5)))
	mustFail(t, node("Reshape", 2, 1), 14, "constant", V(x), V(ints(24)))
	mustFail(t, node("Reshape", 2, 1), 14, "invalid", V(x), C(ints(-2, 12)))
	mustFail(t, node("Reshape", 2, 1), 14, "rank", V(x), C(ints(0, 0, 0, 0)))

	for axis, want := range map[int][]int{0: {1, 24}, 1: {2, 12}, 2: {6, 4}, 3: {24, 1}, -1: {6, 4}, -3: {1, 24}} {
		n := node("Flatten", 1, 1)
		n.SetInt("axis", int64(axis))
		wantShape(t, "flatten", run1(t, n, 13, V(x)), want...)
	}
	fl := node("Flatten", 1, 1)
	fl.SetInt("axis", 4)
	mustFail(t, fl, 13, "axis", V(x))

	y := seq(1, 3, 1, 2)
	wantShape(t, "squeeze all", run1(t, node("Squeeze", 1, 1), 13, V(y)), 3, 2)
	wantShape(t, "squeeze input", run1(t, node("Squeeze", 2, 1), 13, V(y), C(ints(-2))), 1, 3, 2)
	sq := setInts(node("Squeeze", 1, 1), "axes", 0)
	wantShape(t, "squeeze attr", run1(t, sq, 11, V(y)), 3, 1, 2)
	mustFail(t, node("Squeeze", 2, 1), 13, "not 1", V(y), C(ints(1)))
	wantShape(t, "unsqueeze", run1(t, node("Unsqueeze", 2, 1), 13, V(x), C(ints(0, -1))), 1, 2, 3, 4, 1)
	wantShape(t, "unsqueeze attr", run1(t, setInts(node("Unsqueeze", 1, 1), "axes", 1, 3), 11, V(x)), 2, 1, 3, 1, 4)
	wantShape(t, "unsqueeze scalar", run1(t, node("Unsqueeze", 2, 1), 13, C(i64(tensor.Shape{}, 7)), C(ints(0))), 1)
	mustFail(t, node("Unsqueeze", 2, 1), 13, "repeated", V(x), C(ints(0, 0)))
	mustFail(t, node("Unsqueeze", 2, 1), 13, "out of range", V(x), C(ints(5)))
	mustFail(t, node("Unsqueeze", 1, 1), 13, "required", V(x))

	for _, op := range []string{"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"} {
		d, _ := Lookup(op)
		if !d.View || d.Class != ClassMemory {
			t.Errorf("%s: View %v Class %v", op, d.View, d.Class)
		}
	}
	if err := tensor.AllClose(run1(t, node("Identity", 1, 1), 13, V(x)), x, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := tensor.AllClose(run1(t, node("Dropout", 1, 1), 7, V(x)), x, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := tensor.AllClose(run1(t, node("Dropout", 3, 1), 13, V(x), C(scalarF(0.5)), C(&tensor.Tensor{DType: tensor.Bool, Shape: tensor.Shape{}, B: []bool{false}})), x, 0, 0); err != nil {
		t.Fatal(err)
	}
	mustFail(t, node("Dropout", 3, 1), 13, "training_mode", V(x), C(scalarF(0.5)), C(&tensor.Tensor{DType: tensor.Bool, Shape: tensor.Shape{}, B: []bool{true}}))
	mustFail(t, node("Dropout", 1, 2), 13, "mask", V(x))
}

func TestTransposeConcatSplit(t *testing.T) {
	x := seq(2, 3, 4)
	perms := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for _, p := range perms {
		got := run1(t, setInts(node("Transpose", 1, 1), "perm", p...), 13, V(x))
		xs := x.Shape.Strides()
		for i := 0; i < got.Len(); i++ {
			// unravel i in the output shape
			rem, off := i, 0
			for d := 2; d >= 0; d-- {
				idx := rem % got.Shape[d]
				rem /= got.Shape[d]
				off += idx * xs[p[d]]
			}
			if got.F[i] != x.F[off] {
				t.Fatalf("perm %v element %d: %g want %g", p, i, got.F[i], x.F[off])
			}
		}
	}
	wantShape(t, "transpose default", run1(t, node("Transpose", 1, 1), 13, V(x)), 4, 3, 2)
	mustFail(t, setInts(node("Transpose", 1, 1), "perm", 0, 0, 1), 13, "permutation", V(x))
	// ShuffleNet channel shuffle: [1,2,3,2,2] perm 0,2,1,3,4
	cs := seq(1, 2, 3, 2, 2)
	got := run1(t, setInts(node("Transpose", 1, 1), "perm", 0, 2, 1, 3, 4), 13, V(cs))
	wantShape(t, "shuffle", got, 1, 3, 2, 2, 2)
	if got.F[4] != 12 || got.F[8] != 4 {
		t.Fatalf("channel shuffle values %v", got.F[:12])
	}

	a, b := seq(2, 1, 3), seq(2, 2, 3)
	cn := node("Concat", 2, 1)
	cn.SetInt("axis", -2)
	c := run1(t, cn, 13, V(a), V(b))
	wantShape(t, "concat", c, 2, 3, 3)
	if c.F[3] != 0 || c.F[9] != 3 || c.F[12] != 6 {
		t.Fatalf("concat values %v", c.F)
	}
	ci := node("Concat", 3, 1)
	ci.SetInt("axis", 0)
	cc := run1(t, ci, 13, C(ints(1)), C(ints(2, 3)), C(ints()))
	if err := tensor.AllClose(cc, ints(1, 2, 3), 0, 0); err != nil {
		t.Fatal(err)
	}
	mustFail(t, cn, 13, "differs", V(a), V(seq(3, 2, 3)))
	mustFail(t, cn, 13, "rank", V(a), V(seq(2, 3)))
	mustFail(t, node("Concat", 2, 1), 13, "axis", V(a), V(b))
	mustFail(t, cn, 13, "type", V(a), C(i64(tensor.Shape{2, 1, 3}, 1, 2, 3, 4, 5, 6)))

	// Split: opset 11 attr, 13 input, 18 num_outputs, default even
	s := seq(2, 6)
	sp := node("Split", 1, 2)
	sp.SetInt("axis", 1)
	sp.SetInts("split", 2, 4)
	outs, err := exec(t, sp, 11, V(s))
	if err != nil {
		t.Fatal(err)
	}
	wantShape(t, "split0", outs[0], 2, 2)
	wantShape(t, "split1", outs[1], 2, 4)
	if outs[1].F[0] != 2 || outs[1].F[4] != 8 {
		t.Fatalf("split values %v", outs[1].F)
	}
	sp13 := node("Split", 2, 3)
	sp13.SetInt("axis", -1)
	outs, err = exec(t, sp13, 13, V(s), C(ints(1, 2, 3)))
	if err != nil {
		t.Fatal(err)
	}
	wantShape(t, "split13", outs[2], 2, 3)
	sp18 := node("Split", 1, 4)
	sp18.SetInt("axis", 1)
	sp18.SetInt("num_outputs", 4)
	outs, err = exec(t, sp18, 18, V(seq(1, 7)))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []int{2, 2, 2, 1} {
		wantShape(t, "split18", outs[i], 1, w)
	}
	outs, err = exec(t, node("Split", 1, 3), 13, V(s.Reshaped(tensor.Shape{6, 2})))
	if err != nil || outs[2].F[0] != 8 {
		t.Fatalf("even split: %v %v", err, outs)
	}
	mustFail(t, node("Split", 1, 4), 13, "evenly", V(s.Reshaped(tensor.Shape{6, 2})))
	mustFail(t, node("Split", 2, 2), 13, "sums to", V(s), C(ints(1, 2)))
	mustFail(t, node("Split", 2, 3), 13, "entries", V(s), C(ints(1, 1)))
}

func TestSlice(t *testing.T) {
	x := seq(3, 4)
	big := int64(math.MaxInt64)
	for _, tc := range []struct {
		name                      string
		starts, ends, axes, steps []int64
		want                      []float32
		shape                     []int
	}{
		{"basic", []int64{0, 1}, []int64{2, 3}, nil, nil, []float32{1, 2, 5, 6}, []int{2, 2}},
		{"axes", []int64{1}, []int64{big}, []int64{-1}, nil, []float32{1, 2, 3, 5, 6, 7, 9, 10, 11}, []int{3, 3}},
		{"neg_step", []int64{-1}, []int64{-big}, []int64{1}, []int64{-1}, []float32{3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8}, []int{3, 4}},
		{"neg_step2", []int64{big, 3}, []int64{-big, 0}, []int64{0, 1}, []int64{-2, -2}, []float32{11, 9 + 0, 3, 1}, []int{2, 2}},
		{"step2", []int64{0}, []int64{4}, []int64{1}, []int64{3}, []float32{0, 3, 4, 7, 8, 11}, []int{3, 2}},
		{"empty", []int64{2}, []int64{1}, []int64{0}, nil, nil, []int{0, 4}},
		{"clamp", []int64{-10}, []int64{10}, []int64{0}, nil, x.F, []int{3, 4}},
	} {
		args := []arg{V(x), C(ints(tc.starts...)), C(ints(tc.ends...))}
		if tc.axes != nil {
			args = append(args, C(ints(tc.axes...)))
		}
		if tc.steps != nil {
			if tc.axes == nil {
				args = append(args, none)
			}
			args = append(args, C(ints(tc.steps...)))
		}
		got := run1(t, node("Slice", len(args), 1), 13, args...)
		wantShape(t, tc.name, got, tc.shape...)
		if tc.name == "neg_step2" {
			tc.want = []float32{11, 9, 3, 1}
		}
		for i, v := range tc.want {
			if got.F[i] != v {
				t.Fatalf("%s: got %v want %v", tc.name, got.F, tc.want)
			}
		}
	}
	// opset 1: attributes
	s1 := node("Slice", 1, 1)
	s1.SetInts("starts", 1)
	s1.SetInts("ends", 1000)
	s1.SetInts("axes", 1)
	wantShape(t, "slice1", run1(t, s1, 1, V(x)), 3, 3)
	mustFail(t, node("Slice", 5, 1), 13, "step is zero", V(x), C(ints(0)), C(ints(1)), C(ints(0)), C(ints(0)))
	mustFail(t, node("Slice", 3, 1), 13, "constant", V(x), V(ints(0)), C(ints(1)))
	mustFail(t, node("Slice", 4, 1), 13, "repeated", V(x), C(ints(0, 0)), C(ints(1, 1)), C(ints(0, -2)))
	mustFail(t, node("Slice", 4, 1), 13, "out of range", V(x), C(ints(0)), C(ints(1)), C(ints(2)))
}

func TestGatherShapeCast(t *testing.T) {
	x := seq(3, 4)
	g := run1(t, node("Gather", 2, 1), 13, V(x), C(i64(tensor.Shape{2}, 2, -3)))
	wantShape(t, "gather0", g, 2, 4)
	if g.F[0] != 8 || g.F[4] != 0 {
		t.Fatalf("gather values %v", g.F)
	}
	ga := node("Gather", 2, 1)
	ga.SetInt("axis", -1)
	g = run1(t, ga, 13, V(x), C(i64(tensor.Shape{}, 3)))
	wantShape(t, "gather scalar index", g, 3)
	if g.F[1] != 7 {
		t.Fatalf("gather values %v", g.F)
	}
	gi := run1(t, node("Gather", 2, 1), 13, C(ints(10, 20, 30)), C(i64(tensor.Shape{2, 2}, 0, 1, 2, -1)))
	if err := tensor.AllClose(gi, i64(tensor.Shape{2, 2}, 10, 20, 30, 30), 0, 0); err != nil {
		t.Fatal(err)
	}
	mustFail(t, node("Gather", 2, 1), 13, "out of range", V(x), C(ints(3)))
	// runtime out-of-range index: an error from Run, not a panic
	mustFail(t, node("Gather", 2, 1), 13, "out of range", V(x), V(ints(-4)))
	mustFail(t, node("Gather", 2, 1), 13, "type", V(x), V(x))

	sh := run1(t, node("Shape", 1, 1), 13, V(seq(2, 3, 4, 5)))
	if err := tensor.AllClose(sh, ints(2, 3, 4, 5), 0, 0); err != nil {
		t.Fatal(err)
	}
	s15 := node("Shape", 1, 1)
	s15.SetInt("start", 1)
	s15.SetInt("end", -1)
	if err := tensor.AllClose(run1(t, s15, 15, V(seq(2, 3, 4, 5))), ints(3, 4), 0, 0); err != nil {
		t.Fatal(err)
	}
	s15b := node("Shape", 1, 1)
	s15b.SetInt("start", -10)
	if err := tensor.AllClose(run1(t, s15b, 15, V(seq(2, 3))), ints(2, 3), 0, 0); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		to   int64
		in   *tensor.Tensor
		want *tensor.Tensor
	}{
		{7, f32(tensor.Shape{3}, 1.7, -1.7, 0), ints(1, -1, 0)},
		{1, ints(3, -2), f32(tensor.Shape{2}, 3, -2)},
		{9, f32(tensor.Shape{2}, 0, 2), &tensor.Tensor{DType: tensor.Bool, Shape: tensor.Shape{2}, B: []bool{false, true}}},
		{1, &tensor.Tensor{DType: tensor.Bool, Shape: tensor.Shape{2}, B: []bool{false, true}}, f32(tensor.Shape{2}, 0, 1)},
		{6, ints(5), ints(5)},
	} {
		n := node("Cast", 1, 1)
		n.SetInt("to", tc.to)
		if err := tensor.AllClose(run1(t, n, 13, V(tc.in)), tc.want, 0, 0); err != nil {
			t.Fatalf("cast to %d: %v", tc.to, err)
		}
	}
	bad := node("Cast", 1, 1)
	bad.SetInt("to", 8)
	mustFail(t, bad, 13, "not supported", V(x))
	mustFail(t, node("Cast", 1, 1), 13, "required", V(x))
}

func TestConstants(t *testing.T) {
	c := node("Constant", 0, 1)
	c.Attrs["value"] = graph.Attr{Kind: graph.AttrTensor, Tensor: seq(2, 2)}
	if err := tensor.AllClose(run1(t, c, 13), seq(2, 2), 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		set  func(n *graph.Node)
		want *tensor.Tensor
	}{
		{func(n *graph.Node) { n.SetFloat("value_float", 2.5) }, f32(tensor.Shape{}, 2.5)},
		{func(n *graph.Node) { n.SetFloats("value_floats", 1, 2) }, f32(tensor.Shape{2}, 1, 2)},
		{func(n *graph.Node) { n.SetInt("value_int", 4) }, i64(tensor.Shape{}, 4)},
		{func(n *graph.Node) { n.SetInts("value_ints", 4, 5) }, ints(4, 5)},
	} {
		n := node("Constant", 0, 1)
		tc.set(n)
		if err := tensor.AllClose(run1(t, n, 13), tc.want, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	mustFail(t, node("Constant", 0, 1), 13, "no value")
	vs := node("Constant", 0, 1)
	vs.SetStr("value_string", "x")
	mustFail(t, vs, 13, "not supported")

	cos := run1(t, node("ConstantOfShape", 1, 1), 13, C(ints(2, 3)))
	wantShape(t, "cos", cos, 2, 3)
	co := node("ConstantOfShape", 1, 1)
	co.Attrs["value"] = graph.Attr{Kind: graph.AttrTensor, Tensor: i64(tensor.Shape{1}, 7)}
	ci := run1(t, co, 13, C(ints(3)))
	if ci.DType != tensor.Int64 || ci.I[2] != 7 {
		t.Fatalf("ConstantOfShape int %v", ci)
	}
	wantShape(t, "cos scalar", run1(t, node("ConstantOfShape", 1, 1), 13, C(ints())))
	mustFail(t, node("ConstantOfShape", 1, 1), 13, "invalid", C(ints(-1)))

	rg := run1(t, node("Range", 3, 1), 13, C(i64(tensor.Shape{}, 10)), C(i64(tensor.Shape{}, 4)), C(i64(tensor.Shape{}, -3)))
	if err := tensor.AllClose(rg, ints(10, 7), 0, 0); err != nil {
		t.Fatal(err)
	}
	rf := run1(t, node("Range", 3, 1), 13, C(scalarF(0)), C(scalarF(1)), C(scalarF(0.25)))
	wantShape(t, "range float", rf, 4)
	mustFail(t, node("Range", 3, 1), 13, "zero", C(scalarF(0)), C(scalarF(1)), C(scalarF(0)))

	ex := run1(t, node("Expand", 2, 1), 13, V(f32(tensor.Shape{3, 1}, 1, 2, 3)), C(ints(2, 1, 4)))
	wantShape(t, "expand", ex, 2, 3, 4)
	if ex.F[4] != 2 || ex.F[23] != 3 {
		t.Fatalf("expand %v", ex.F)
	}
	mustFail(t, node("Expand", 2, 1), 13, "broadcastable", V(seq(3, 2)), C(ints(3, 3)))
	tl := run1(t, node("Tile", 2, 1), 13, V(f32(tensor.Shape{2}, 1, 2)), C(ints(3)))
	if err := tensor.AllClose(tl, f32(tensor.Shape{6}, 1, 2, 1, 2, 1, 2), 0, 0); err != nil {
		t.Fatal(err)
	}
}

// TestShuffleNetShapeSubgraph folds torchvision ShuffleNet's
// Shape→Gather→Div→Unsqueeze→Concat→Reshape chain on Int64 values.
func TestShuffleNetShapeSubgraph(t *testing.T) {
	x := seq(1, 4, 2, 2)
	shape := run1(t, node("Shape", 1, 1), 13, V(x))
	var dims []*tensor.Tensor
	for i := 0; i < 4; i++ {
		dims = append(dims, run1(t, node("Gather", 2, 1), 13, C(shape), C(i64(tensor.Shape{}, int64(i)))))
	}
	cpg := run1(t, node("Div", 2, 1), 13, C(dims[1]), C(i64(tensor.Shape{}, 2)))
	parts := []arg{}
	for _, v := range []*tensor.Tensor{dims[0], i64(tensor.Shape{}, 2), cpg, dims[2], dims[3]} {
		parts = append(parts, C(run1(t, node("Unsqueeze", 2, 1), 13, C(v), C(ints(0)))))
	}
	cn := node("Concat", 5, 1)
	cn.SetInt("axis", 0)
	spec := run1(t, cn, 13, parts...)
	if err := tensor.AllClose(spec, ints(1, 2, 2, 2, 2), 0, 0); err != nil {
		t.Fatal(err)
	}
	r := run1(t, node("Reshape", 2, 1), 13, V(x), C(spec))
	wantShape(t, "reshape", r, 1, 2, 2, 2, 2)
}

func TestPad(t *testing.T) {
	x := f32(tensor.Shape{2, 3}, 1, 2, 3, 4, 5, 6)
	for _, tc := range []struct {
		mode string
		want []float32
	}{
		{"constant", []float32{9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 9, 4, 5, 6, 9, 9}},
		{"edge", []float32{1, 1, 2, 3, 3, 3, 1, 1, 2, 3, 3, 3, 4, 4, 5, 6, 6, 6}},
		{"reflect", []float32{5, 4, 5, 6, 5, 4, 2, 1, 2, 3, 2, 1, 5, 4, 5, 6, 5, 4}},
	} {
		// pads: dim0 begin 1, dim1 begin 1, dim0 end 0, dim1 end 2
		n := node("Pad", 3, 1)
		n.SetStr("mode", tc.mode)
		got := run1(t, n, 13, V(x), C(ints(1, 1, 0, 2)), C(scalarF(9)))
		wantShape(t, tc.mode, got, 3, 6)
		if err := tensor.AllClose(got, f32(tensor.Shape{3, 6}, tc.want...), 0, 0); err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
		// opset 2 attributes
		n2 := node("Pad", 1, 1)
		n2.SetStr("mode", tc.mode)
		n2.SetInts("pads", 1, 1, 0, 2)
		n2.SetFloat("value", 9)
		if err := tensor.AllClose(run1(t, n2, 2, V(x)), f32(tensor.Shape{3, 6}, tc.want...), 0, 0); err != nil {
			t.Fatalf("%s opset 2: %v", tc.mode, err)
		}
	}
	// runtime constant value; opset 18 axes; negative pads crop
	got := run1(t, node("Pad", 3, 1), 13, V(x), C(ints(0, 1, 0, 0)), V(scalarF(-1)))
	if err := tensor.AllClose(got, f32(tensor.Shape{2, 4}, -1, 1, 2, 3, -1, 4, 5, 6), 0, 0); err != nil {
		t.Fatal(err)
	}
	got = run1(t, node("Pad", 4, 1), 18, V(x), C(ints(1, 0)), none, C(ints(-1)))
	if err := tensor.AllClose(got, f32(tensor.Shape{2, 4}, 0, 1, 2, 3, 0, 4, 5, 6), 0, 0); err != nil {
		t.Fatal(err)
	}
	got = run1(t, node("Pad", 2, 1), 13, V(x), C(ints(0, -1, 0, 0)))
	if err := tensor.AllClose(got, f32(tensor.Shape{2, 2}, 2, 3, 5, 6), 0, 0); err != nil {
		t.Fatal(err)
	}
	bad := node("Pad", 2, 1)
	bad.SetStr("mode", "mirror")
	mustFail(t, bad, 13, "mode", V(x), C(ints(0, 0, 0, 0)))
	mustFail(t, node("Pad", 2, 1), 13, "pads", V(x), C(ints(1, 1)))
	mustFail(t, node("Pad", 2, 1), 13, "remove more", V(x), C(ints(0, -4, 0, 0)))
}

func TestReduceSoftmax(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	x := randT(r, 2, 3, 4, 5)
	ref := func(axes []int, keep bool) *tensor.Tensor {
		red := make([]bool, 4)
		for _, a := range axes {
			red[(a+4)%4] = true
		}
		ks := x.Shape.Clone()
		for i := range ks {
			if red[i] {
				ks[i] = 1
			}
		}
		o := tensor.New(tensor.Float32, ks)
		st := bstrides(ks, x.Shape)
		cnt := x.Len() / o.Len()
		forEachIndex(x.Shape, [][]int{st, x.Shape.Strides()}, func(_ int, off []int) {
			o.F[off[0]] += x.F[off[1]] / float32(cnt)
		})
		if !keep {
			s := tensor.Shape{}
			for i, d := range x.Shape {
				if !red[i] {
					s = append(s, d)
				}
			}
			o = o.Reshaped(s)
		}
		return o
	}
	for _, tc := range []struct {
		axes []int
		keep bool
	}{{[]int{2, 3}, true}, {[]int{1}, false}, {[]int{0, 2}, true}, {[]int{-1}, false}, {nil, true}, {[]int{0, 1, 2, 3}, false}} {
		n := node("ReduceMean", 1, 1)
		if tc.axes != nil {
			n.SetInts("axes", tc.axes...)
		}
		if !tc.keep {
			n.SetInt("keepdims", 0)
		}
		all := tc.axes
		if all == nil {
			all = []int{0, 1, 2, 3}
		}
		want := ref(all, tc.keep)
		near(t, "ReduceMean attr", run1(t, n, 13, V(x)), want)
		n18 := node("ReduceMean", 2, 1)
		if !tc.keep {
			n18.SetInt("keepdims", 0)
		}
		a := none
		if tc.axes != nil {
			a64 := make([]int64, len(tc.axes))
			for i, v := range tc.axes {
				a64[i] = int64(v)
			}
			a = C(ints(a64...))
		}
		near(t, "ReduceMean input", run1(t, n18, 18, V(x), a), want)
	}
	noop := node("ReduceMean", 2, 1)
	noop.SetInt("noop_with_empty_axes", 1)
	near(t, "noop", run1(t, noop, 18, V(x), none), x)
	mustFail(t, setInts(node("ReduceMean", 1, 1), "axes", 4), 13, "out of range", V(x))
	rs := run1(t, node("ReduceSum", 2, 1), 13, C(ints(1, 2, 3)), C(ints(0)))
	if rs.I[0] != 6 {
		t.Fatalf("int ReduceSum %v", rs.I)
	}
	rm := setInts(node("ReduceMax", 1, 1), "axes", 1)
	rm.SetInt("keepdims", 0)
	mx := run1(t, rm, 13, V(f32(tensor.Shape{2, 2}, 1, 5, 7, 3)))
	if mx.F[0] != 5 || mx.F[1] != 7 {
		t.Fatalf("ReduceMax %v", mx.F)
	}

	// Softmax: opset < 13 flattens at axis; opset 13 uses one axis.
	softRef := func(outer, cnt, inner int) *tensor.Tensor {
		o := tensor.New(tensor.Float32, x.Shape)
		for a := 0; a < outer; a++ {
			for i := 0; i < inner; i++ {
				var s float64
				for c := 0; c < cnt; c++ {
					s += math.Exp(float64(x.F[(a*cnt+c)*inner+i]))
				}
				for c := 0; c < cnt; c++ {
					o.F[(a*cnt+c)*inner+i] = float32(math.Exp(float64(x.F[(a*cnt+c)*inner+i])) / s)
				}
			}
		}
		return o
	}
	sm := node("Softmax", 1, 1)
	near(t, "softmax11 default", run1(t, sm, 11, V(x)), softRef(2, 60, 1))
	near(t, "softmax13 default", run1(t, sm, 13, V(x)), softRef(24, 5, 1))
	for axis, w := range map[int64][3]int{0: {1, 120, 1}, 2: {6, 20, 1}, -3: {2, 60, 1}} {
		n := node("Softmax", 1, 1)
		n.SetInt("axis", axis)
		near(t, "softmax11", run1(t, n, 11, V(x)), softRef(w[0], w[1], w[2]))
	}
	for axis, w := range map[int64][3]int{0: {1, 2, 60}, 1: {2, 3, 20}, -2: {6, 4, 5}} {
		n := node("Softmax", 1, 1)
		n.SetInt("axis", axis)
		near(t, "softmax13", run1(t, n, 13, V(x)), softRef(w[0], w[1], w[2]))
	}
	ax := node("Softmax", 1, 1)
	ax.SetInt("axis", 4)
	mustFail(t, ax, 13, "out of range", V(x))
	ls := run1(t, node("LogSoftmax", 1, 1), 13, V(x))
	sr := softRef(24, 5, 1)
	for i := range sr.F {
		sr.F[i] = float32(math.Log(float64(sr.F[i])))
	}
	near(t, "logsoftmax", ls, sr)
}
