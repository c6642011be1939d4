package ops

import (
	"math"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

// Data-movement operators: Transpose, Concat, Split, Slice, Gather, Pad,
// Expand, Tile.

func init() {
	Register("Transpose", &Def{Infer: transposeInfer, Prepare: transposePrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("Concat", &Def{Infer: concatInfer, Prepare: concatPrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("Split", &Def{Infer: splitInfer, Prepare: splitPrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("Slice", &Def{Infer: sliceInfer, Prepare: slicePrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("Gather", &Def{Infer: gatherInfer, Prepare: gatherPrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("Pad", &Def{Infer: padInfer, Prepare: padPrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("Expand", &Def{Infer: expandInfer, Prepare: expandPrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
	Register("Tile", &Def{Infer: tileInfer, Prepare: tilePrepare, FLOPs: zeroFLOPs, Class: ClassMemory})
}

// strided describes a strided read of a source tensor producing a dense
// output: out[i0..ik] = src[base + Σ i_d*st_d]. Adjacent dimensions that are
// contiguous in the source are merged.
type strided struct {
	dims []int
	st   []int
	base int
	n    int
}

func newStrided(dims, st []int, base int) *strided {
	s := &strided{base: base, n: 1}
	for i, d := range dims {
		s.n *= d
		if d == 1 {
			continue
		}
		if k := len(s.dims) - 1; k >= 0 && s.st[k] == st[i]*d {
			s.dims[k] *= d
			s.st[k] = st[i]
			continue
		}
		s.dims = append(s.dims, d)
		s.st = append(s.st, st[i])
	}
	if len(s.dims) == 0 {
		s.dims, s.st = []int{1}, []int{1}
	}
	return s
}

// gatherStrided copies the strided source into dst (len s.n).
func gatherStrided[T any](s *strided, dst, src []T) {
	if s.n == 0 {
		return
	}
	last := len(s.dims) - 1
	inner, ist := s.dims[last], s.st[last]
	rows := s.n / inner
	idx := make([]int, last)
	off := s.base
	for r := 0; r < rows; r++ {
		d := dst[r*inner : (r+1)*inner]
		if ist == 1 {
			copy(d, src[off:off+inner])
		} else {
			o := off
			for i := range d {
				d[i] = src[o]
				o += ist
			}
		}
		for k := last - 1; k >= 0; k-- {
			idx[k]++
			off += s.st[k]
			if idx[k] < s.dims[k] {
				break
			}
			off -= s.st[k] * s.dims[k]
			idx[k] = 0
		}
	}
}

func runStrided(s *strided, dst, src *tensor.Tensor) {
	switch src.DType {
	case tensor.Float32:
		gatherStrided(s, dst.F, src.F)
	case tensor.Int64:
		gatherStrided(s, dst.I, src.I)
	case tensor.Bool:
		gatherStrided(s, dst.B, src.B)
	}
}

func transposePerm(n *graph.Node, r int) ([]int, error) {
	perm := n.Ints("perm", nil)
	if perm == nil {
		perm = make([]int, r)
		for i := range perm {
			perm[i] = r - 1 - i
		}
	}
	if len(perm) != r {
		return nil, Errorf(n, "perm %v has %d entries for rank %d", perm, len(perm), r)
	}
	seen := make([]bool, r)
	for _, p := range perm {
		if p < 0 || p >= r || seen[p] {
			return nil, Errorf(n, "perm %v is not a permutation of 0..%d", perm, r-1)
		}
		seen[p] = true
	}
	return perm, nil
}

func transposeInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	x := in[0].Shape
	perm, err := transposePerm(n, len(x))
	if err != nil {
		return nil, err
	}
	out := make(tensor.Shape, len(x))
	for i, p := range perm {
		out[i] = x[p]
	}
	return one(in[0].DType, out), nil
}

func transposePrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	x := in[0].Shape
	perm, err := transposePerm(n, len(x))
	if err != nil {
		return nil, err
	}
	xs := x.Strides()
	st := make([]int, len(x))
	for i, p := range perm {
		st[i] = xs[p]
	}
	s := newStrided(out[0].Shape, st, 0)
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 1); err != nil {
			return err
		}
		runStrided(s, out[0], in[0])
		return nil
	}), nil
}

func concatInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if len(in) == 0 {
		return nil, Errorf(n, "needs at least one input")
	}
	if err := arity(n, in, len(in), len(in), 1, 1); err != nil {
		return nil, err
	}
	if !n.Has("axis") {
		return nil, Errorf(n, "attribute axis is required")
	}
	x := in[0].Shape
	if len(x) == 0 {
		return nil, Errorf(n, "cannot concatenate scalars")
	}
	axis, err := normAxis(n, int(n.Int("axis", 0)), len(x))
	if err != nil {
		return nil, err
	}
	out := x.Clone()
	out[axis] = 0
	for i, s := range in {
		if s.DType != in[0].DType {
			return nil, Errorf(n, "input %d has type %v, input 0 has %v", i, s.DType, in[0].DType)
		}
		if len(s.Shape) != len(x) {
			return nil, Errorf(n, "input %d has rank %d (shape %v), input 0 has rank %d", i, len(s.Shape), s.Shape, len(x))
		}
		for d := range x {
			if d != axis && s.Shape[d] != x[d] {
				return nil, Errorf(n, "input %d shape %v differs from input 0 shape %v outside axis %d", i, s.Shape, x, axis)
			}
		}
		out[axis] += s.Shape[axis]
	}
	return one(in[0].DType, out), nil
}

func concatPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	o := out[0].Shape
	axis, _ := normAxis(n, int(n.Int("axis", 0)), len(o))
	outer, inner := shapeProd(o, 0, axis), shapeProd(o, axis+1, len(o))
	blocks := make([]int, len(in))
	for i, s := range in {
		blocks[i] = s.Shape[axis] * inner
	}
	rowLen := o[axis] * inner
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, len(blocks)); err != nil {
			return err
		}
		run := func(lo, hi int) {
			for r := lo; r < hi; r++ {
				off := r * rowLen
				for i, t := range in {
					b := blocks[i]
					switch t.DType {
					case tensor.Float32:
						copy(out[0].F[off:off+b], t.F[r*b:(r+1)*b])
					case tensor.Int64:
						copy(out[0].I[off:off+b], t.I[r*b:(r+1)*b])
					case tensor.Bool:
						copy(out[0].B[off:off+b], t.B[r*b:(r+1)*b])
					}
					off += b
				}
			}
		}
		splitItems(p, outer, rowLen, run)
		return nil
	}), nil
}

// splitSizes returns the sizes of Split's outputs along axis.
func splitSizes(n *graph.Node, opset int64, in []Input) (axis int, sizes []int, err error) {
	x := in[0].Shape
	if len(x) == 0 {
		return 0, nil, Errorf(n, "cannot split a scalar")
	}
	axis, err = normAxis(n, int(n.Int("axis", 0)), len(x))
	if err != nil {
		return
	}
	dim := x[axis]
	nout := len(n.Outputs)
	var split []int64
	switch {
	case opset >= 13 && present(in, 1):
		if split, err = constInts(n, in, 1, "split"); err != nil {
			return
		}
	case opset < 13:
		split, _ = attrInts64(n, "split")
	}
	if split != nil {
		if len(split) != nout {
			return 0, nil, Errorf(n, "split %v has %d entries for %d outputs", split, len(split), nout)
		}
		total := int64(0)
		for _, s := range split {
			if s < 0 {
				return 0, nil, Errorf(n, "split %v has a negative size", split)
			}
			total += s
		}
		if total != int64(dim) {
			return 0, nil, Errorf(n, "split %v sums to %d, axis %d has size %d", split, total, axis, dim)
		}
		return axis, toInts(split), nil
	}
	if opset >= 18 && n.Has("num_outputs") {
		num := int(n.Int("num_outputs", 0))
		if num < 1 || num != nout {
			return 0, nil, Errorf(n, "num_outputs %d does not match %d outputs", num, nout)
		}
		chunk := (dim + num - 1) / num
		sizes = make([]int, num)
		rem := dim
		for i := range sizes {
			sizes[i] = min(chunk, rem)
			rem -= sizes[i]
		}
		if num > 1 && sizes[num-1] <= 0 {
			return 0, nil, Errorf(n, "cannot split size %d into %d outputs", dim, num)
		}
		return axis, sizes, nil
	}
	if nout == 0 || dim%nout != 0 {
		return 0, nil, Errorf(n, "axis %d of size %d does not split evenly into %d outputs", axis, dim, nout)
	}
	sizes = make([]int, nout)
	for i := range sizes {
		sizes[i] = dim / nout
	}
	return axis, sizes, nil
}

func splitInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 1, 2, 1, math.MaxInt32); err != nil {
		return nil, err
	}
	axis, sizes, err := splitSizes(n, opset, in)
	if err != nil {
		return nil, err
	}
	outs := make([]graph.ValueInfo, len(sizes))
	for i, s := range sizes {
		sh := in[0].Shape.Clone()
		sh[axis] = s
		outs[i] = graph.ValueInfo{DType: in[0].DType, Shape: sh}
	}
	return outs, nil
}

func splitPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	axis, sizes, err := splitSizes(n, opset, in)
	if err != nil {
		return nil, err
	}
	x := in[0].Shape
	outer, inner := shapeProd(x, 0, axis), shapeProd(x, axis+1, len(x))
	rowLen := x[axis] * inner
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 1); err != nil {
			return err
		}
		for r := 0; r < outer; r++ {
			off := r * rowLen
			for i, o := range out {
				b := sizes[i] * inner
				if o != nil {
					switch o.DType {
					case tensor.Float32:
						copy(o.F[r*b:(r+1)*b], in[0].F[off:off+b])
					case tensor.Int64:
						copy(o.I[r*b:(r+1)*b], in[0].I[off:off+b])
					case tensor.Bool:
						copy(o.B[r*b:(r+1)*b], in[0].B[off:off+b])
					}
				}
				off += b
			}
		}
		return nil
	}), nil
}

// slicePlan computes the output shape of a Slice and its strided read.
func slicePlan(n *graph.Node, opset int64, in []Input) (tensor.Shape, *strided, error) {
	x := in[0].Shape
	var starts, ends, axes, steps []int64
	var err error
	if opset < 10 {
		var ok bool
		if starts, ok = attrInts64(n, "starts"); !ok {
			return nil, nil, Errorf(n, "attribute starts is required")
		}
		if ends, ok = attrInts64(n, "ends"); !ok {
			return nil, nil, Errorf(n, "attribute ends is required")
		}
		axes, _ = attrInts64(n, "axes")
	} else {
		if !present(in, 1) || !present(in, 2) {
			return nil, nil, Errorf(n, "starts and ends inputs are required")
		}
		if starts, err = constInts(n, in, 1, "starts"); err != nil {
			return nil, nil, err
		}
		if ends, err = constInts(n, in, 2, "ends"); err != nil {
			return nil, nil, err
		}
		if present(in, 3) {
			if axes, err = constInts(n, in, 3, "axes"); err != nil {
				return nil, nil, err
			}
		}
		if present(in, 4) {
			if steps, err = constInts(n, in, 4, "steps"); err != nil {
				return nil, nil, err
			}
		}
	}
	if len(ends) != len(starts) {
		return nil, nil, Errorf(n, "starts %v and ends %v differ in length", starts, ends)
	}
	if axes == nil {
		axes = make([]int64, len(starts))
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	if steps == nil {
		steps = make([]int64, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, nil, Errorf(n, "starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
	}
	r := len(x)
	out := x.Clone()
	begin := make([]int, r)
	step := make([]int, r)
	for i := range step {
		step[i] = 1
	}
	seen := make([]bool, r)
	for i, a64 := range axes {
		if a64 < -int64(r) || a64 >= int64(r) {
			return nil, nil, Errorf(n, "axis %d out of range for rank %d", a64, r)
		}
		a := int(a64)
		if a < 0 {
			a += r
		}
		if seen[a] {
			return nil, nil, Errorf(n, "axis %d repeated in %v", a64, axes)
		}
		seen[a] = true
		dim := int64(x[a])
		st, en, sp := starts[i], ends[i], steps[i]
		if sp == 0 {
			return nil, nil, Errorf(n, "step is zero on axis %d", a)
		}
		if st < 0 {
			st += dim
		}
		if en < 0 {
			en += dim
		}
		var cnt int64
		if sp > 0 {
			st = min(max(st, 0), dim)
			en = min(max(en, 0), dim)
			if en > st {
				cnt = (en - st + sp - 1) / sp
			}
		} else {
			st = min(max(st, 0), dim-1)
			en = min(max(en, -1), dim-1)
			if st > en {
				cnt = (st - en + (-sp) - 1) / (-sp)
			}
		}
		out[a] = int(cnt)
		begin[a] = int(st)
		if cnt == 0 {
			begin[a] = 0
		}
		step[a] = int(max(min(sp, math.MaxInt32), math.MinInt32))
	}
	xs := x.Strides()
	base := 0
	st := make([]int, r)
	for d := 0; d < r; d++ {
		base += begin[d] * xs[d]
		st[d] = step[d] * xs[d]
	}
	return out, newStrided(out, st, base), nil
}

func sliceInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 1, 5, 1, 1); err != nil {
		return nil, err
	}
	out, _, err := slicePlan(n, opset, in)
	if err != nil {
		return nil, err
	}
	return one(in[0].DType, out), nil
}

func slicePrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	_, s, err := slicePlan(n, opset, in)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 1); err != nil {
			return err
		}
		runStrided(s, out[0], in[0])
		return nil
	}), nil
}

func gatherInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 2, 2, 1, 1); err != nil {
		return nil, err
	}
	if err := wantDType(n, in, 1, tensor.Int64); err != nil {
		return nil, err
	}
	x := in[0].Shape
	if len(x) == 0 {
		return nil, Errorf(n, "cannot gather from a scalar")
	}
	axis, err := normAxis(n, int(n.Int("axis", 0)), len(x))
	if err != nil {
		return nil, err
	}
	if c := in[1].Const; c != nil {
		for _, v := range c.I {
			if v < -int64(x[axis]) || v >= int64(x[axis]) {
				return nil, Errorf(n, "index %d out of range for axis %d of size %d", v, axis, x[axis])
			}
		}
	}
	out := append(append(x[:axis:axis].Clone(), in[1].Shape...), x[axis+1:]...)
	return one(in[0].DType, out), nil
}

func gatherPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	x := in[0].Shape
	axis, _ := normAxis(n, int(n.Int("axis", 0)), len(x))
	outer, dim, inner := shapeProd(x, 0, axis), x[axis], shapeProd(x, axis+1, len(x))
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 2); err != nil {
			return err
		}
		idx := in[1].I
		for _, v := range idx {
			if v < -int64(dim) || v >= int64(dim) {
				return Errorf(n, "index %d out of range for axis %d of size %d", v, axis, dim)
			}
		}
		src, dst := in[0], out[0]
		o := 0
		for r := 0; r < outer; r++ {
			for _, v := range idx {
				if v < 0 {
					v += int64(dim)
				}
				s := (r*dim + int(v)) * inner
				switch src.DType {
				case tensor.Float32:
					copy(dst.F[o:o+inner], src.F[s:s+inner])
				case tensor.Int64:
					copy(dst.I[o:o+inner], src.I[s:s+inner])
				case tensor.Bool:
					copy(dst.B[o:o+inner], src.B[s:s+inner])
				}
				o += inner
			}
		}
		return nil
	}), nil
}

// padSpec is the resolved padding of every dimension.
type padSpec struct {
	mode       string
	begin, end []int
	value      float32
	valueConst bool
}

func padSpecOf(n *graph.Node, opset int64, in []Input) (*padSpec, tensor.Shape, error) {
	x := in[0].Shape
	r := len(x)
	ps := &padSpec{mode: n.Str("mode", "constant"), valueConst: true}
	switch ps.mode {
	case "constant", "edge", "reflect", "wrap":
	default:
		return nil, nil, Errorf(n, "unsupported mode %q", ps.mode)
	}
	var pads []int64
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if opset < 11 {
		p, ok := attrInts64(n, "pads")
		if !ok {
			if p, ok = attrInts64(n, "paddings"); !ok {
				return nil, nil, Errorf(n, "attribute pads is required")
			}
		}
		pads = p
		ps.value = n.Float("value", 0)
	} else {
		if !present(in, 1) {
			return nil, nil, Errorf(n, "pads input is required")
		}
		var err error
		if pads, err = constInts(n, in, 1, "pads"); err != nil {
			return nil, nil, err
		}
		if present(in, 2) {
			if in[2].Shape.Numel() != 1 {
				return nil, nil, Errorf(n, "constant_value must be a scalar, has shape %v", in[2].Shape)
			}
			if in[2].DType != in[0].DType {
				return nil, nil, Errorf(n, "constant_value has type %v, data has %v", in[2].DType, in[0].DType)
			}
			if c := in[2].Const; c != nil {
				ps.value, _ = scalarOf(c)
			} else {
				ps.valueConst = false
			}
		}
		if present(in, 3) {
			a, err := constInts(n, in, 3, "axes")
			if err != nil {
				return nil, nil, err
			}
			if axes, err = normAxes(n, toInts(a), r); err != nil {
				return nil, nil, err
			}
		}
	}
	k := len(axes)
	if len(pads) != 2*k {
		return nil, nil, Errorf(n, "pads %v must have %d values for %d axes", pads, 2*k, k)
	}
	ps.begin, ps.end = make([]int, r), make([]int, r)
	out := x.Clone()
	for i, a := range axes {
		b, e := pads[i], pads[i+k]
		if b > math.MaxInt32 || e > math.MaxInt32 || b < math.MinInt32 || e < math.MinInt32 {
			return nil, nil, Errorf(n, "pads %v too large", pads)
		}
		ps.begin[a], ps.end[a] = int(b), int(e)
		out[a] = x[a] + int(b) + int(e)
		if out[a] < 0 {
			return nil, nil, Errorf(n, "pads %v remove more than the %d elements of axis %d", pads, x[a], a)
		}
		if ps.mode != "constant" && x[a] == 0 && out[a] > 0 {
			return nil, nil, Errorf(n, "cannot %s-pad empty axis %d", ps.mode, a)
		}
	}
	return ps, out, nil
}

func padInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 1, 4, 1, 1); err != nil {
		return nil, err
	}
	if err := wantDType(n, in, 0, tensor.Float32, tensor.Int64); err != nil {
		return nil, err
	}
	_, out, err := padSpecOf(n, opset, in)
	if err != nil {
		return nil, err
	}
	if err := checkSize(n, out); err != nil {
		return nil, err
	}
	return one(in[0].DType, out), nil
}

// padMap maps output positions along one axis to source positions (-1: the
// constant value).
func padMap(mode string, in, begin, out int) []int {
	m := make([]int, out)
	for o := range m {
		i := o - begin
		if i >= 0 && i < in {
			m[o] = i
			continue
		}
		switch mode {
		case "constant":
			m[o] = -1
		case "edge":
			m[o] = min(max(i, 0), in-1)
		case "wrap":
			m[o] = ((i % in) + in) % in
		case "reflect":
			if in == 1 {
				m[o] = 0
				continue
			}
			period := 2 * (in - 1)
			j := ((i % period) + period) % period
			if j >= in {
				j = period - j
			}
			m[o] = j
		}
	}
	return m
}

func padPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	ps, os, err := padSpecOf(n, opset, in)
	if err != nil {
		return nil, err
	}
	x := in[0].Shape
	r := len(x)
	maps := make([][]int, r)
	for d := range maps {
		maps[d] = padMap(ps.mode, x[d], ps.begin[d], os[d])
	}
	xs := x.Strides()
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 1); err != nil {
			return err
		}
		val := ps.value
		if !ps.valueConst && len(in) > 2 && in[2] != nil {
			val, _ = scalarOf(in[2])
		}
		ival := int64(val)
		if len(in) > 2 && in[2] != nil && in[2].DType == tensor.Int64 && in[2].Len() == 1 {
			ival = in[2].I[0]
		}
		if r == 0 {
			copyTensor(out[0], in[0])
			return nil
		}
		switch in[0].DType {
		case tensor.Float32:
			padRun(maps, xs, os, out[0].F, in[0].F, val)
		case tensor.Int64:
			padRun(maps, xs, os, out[0].I, in[0].I, ival)
		}
		return nil
	}), nil
}

func padRun[T any](maps [][]int, xs []int, os tensor.Shape, dst, src []T, val T) {
	total := os.Numel()
	if total == 0 {
		return
	}
	r := len(os)
	inner := os[r-1]
	last := maps[r-1]
	idx := make([]int, r-1)
	for row := 0; row*inner < total; row++ {
		off, fill := 0, false
		for d := 0; d < r-1; d++ {
			s := maps[d][idx[d]]
			if s < 0 {
				fill = true
				break
			}
			off += s * xs[d]
		}
		dr := dst[row*inner : (row+1)*inner]
		if fill {
			for i := range dr {
				dr[i] = val
			}
		} else {
			for i, s := range last {
				if s < 0 {
					dr[i] = val
				} else {
					dr[i] = src[off+s]
				}
			}
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			if idx[d] < os[d] {
				break
			}
			idx[d] = 0
		}
	}
}

func expandInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 2, 2, 1, 1); err != nil {
		return nil, err
	}
	s, err := constInts(n, in, 1, "shape")
	if err != nil {
		return nil, err
	}
	sh := make(tensor.Shape, len(s))
	for i, v := range s {
		if v < 0 || v > math.MaxInt32 {
			return nil, Errorf(n, "invalid dimension %d in shape %v", v, s)
		}
		sh[i] = int(v)
	}
	out, err := broadcastShapes(n, in[0].Shape, sh)
	if err != nil {
		return nil, err
	}
	if err := checkSize(n, out); err != nil {
		return nil, err
	}
	return one(in[0].DType, out), nil
}

func expandPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	os := out[0].Shape
	s := newStrided(os, bstrides(in[0].Shape, os), 0)
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 1); err != nil {
			return err
		}
		runStrided(s, out[0], in[0])
		return nil
	}), nil
}

func tileInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	if err := arity(n, in, 2, 2, 1, 1); err != nil {
		return nil, err
	}
	rep, err := constInts(n, in, 1, "repeats")
	if err != nil {
		return nil, err
	}
	x := in[0].Shape
	if len(rep) != len(x) {
		return nil, Errorf(n, "repeats %v must have %d values", rep, len(x))
	}
	out := x.Clone()
	total := int64(1)
	for i, r := range rep {
		if r < 0 || r > math.MaxInt32 {
			return nil, Errorf(n, "invalid repeat %d", r)
		}
		total *= int64(x[i]) * r
		if total > math.MaxInt32 {
			return nil, Errorf(n, "output too large")
		}
		out[i] = x[i] * int(r)
	}
	return one(in[0].DType, out), nil
}

func tilePrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	x, os := in[0].Shape, out[0].Shape
	xs := x.Strides()
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 2); err != nil {
			return err
		}
		total := os.Numel()
		idx := make([]int, len(os))
		src, dst := in[0], out[0]
		for i := 0; i < total; i++ {
			off := 0
			for d := range idx {
				off += (idx[d] % x[d]) * xs[d]
			}
			switch src.DType {
			case tensor.Float32:
				dst.F[i] = src.F[off]
			case tensor.Int64:
				dst.I[i] = src.I[off]
			case tensor.Bool:
				dst.B[i] = src.B[off]
			}
			for d := len(idx) - 1; d >= 0; d-- {
				idx[d]++
				if idx[d] < os[d] {
					break
				}
				idx[d] = 0
			}
		}
		return nil
	}), nil
}
