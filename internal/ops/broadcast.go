package ops

import (
	"math"

	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

// bplan is a precomputed two-operand numpy broadcast. Output dimensions of
// size 1 are dropped and adjacent dimensions broadcasting the same way are
// merged, so that e.g. [N,C,H,W] + [1,C,1,1] becomes rows of H*W elements
// with one scalar of the second operand per row, and same-shape operands are
// one long row. The innermost dimension is the row; ia and ib are the row
// strides of the operands (1: a vector, 0: a scalar repeated along the row).
type bplan struct {
	dims   []int // outer dimensions (rows), row-major
	sa, sb []int // operand strides along the outer dimensions
	inner  int   // row length
	ia, ib int   // operand strides along the row
	total  int   // output elements
}

// newBPlan plans broadcasting a and b to out (out must be their broadcast).
func newBPlan(a, b, out tensor.Shape) *bplan {
	type dim struct {
		size   int
		ba, bb bool // operand broadcast along this dim
	}
	r := len(out)
	var ds []dim
	for i := 0; i < r; i++ {
		if out[i] == 1 {
			continue
		}
		ad, bd := 1, 1
		if j := i - (r - len(a)); j >= 0 {
			ad = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			bd = b[j]
		}
		d := dim{out[i], ad == 1, bd == 1}
		if k := len(ds) - 1; k >= 0 && ds[k].ba == d.ba && ds[k].bb == d.bb {
			ds[k].size *= d.size
			continue
		}
		ds = append(ds, d)
	}
	p := &bplan{total: out.Numel()}
	if len(ds) == 0 {
		p.inner = 1
		return p
	}
	// strides
	sa := make([]int, len(ds))
	sb := make([]int, len(ds))
	accA, accB := 1, 1
	for i := len(ds) - 1; i >= 0; i-- {
		if !ds[i].ba {
			sa[i] = accA
			accA *= ds[i].size
		}
		if !ds[i].bb {
			sb[i] = accB
			accB *= ds[i].size
		}
	}
	last := len(ds) - 1
	p.inner = ds[last].size
	p.ia, p.ib = sa[last], sb[last]
	for i := 0; i < last; i++ {
		p.dims = append(p.dims, ds[i].size)
	}
	p.sa, p.sb = sa[:last], sb[:last]
	return p
}

// rowOffsets returns the operand offsets of the start of row r.
func (p *bplan) rowOffsets(r int) (oa, ob int) {
	for d := len(p.dims) - 1; d >= 0 && r > 0; d-- {
		i := r % p.dims[d]
		r /= p.dims[d]
		oa += i * p.sa[d]
		ob += i * p.sb[d]
	}
	return
}

// each splits the output over the pool and calls row for each (partial) row:
// output range [o, o+n) with operand offsets oa, ob.
func (p *bplan) each(pool *kernels.Pool, row func(o, n, oa, ob int)) {
	splitElems(pool, p.total, func(lo, hi int) {
		r, c := lo/p.inner, lo%p.inner
		for lo < hi {
			oa, ob := p.rowOffsets(r)
			n := min(p.inner-c, hi-lo)
			row(lo, n, oa+c*p.ia, ob+c*p.ib)
			lo += n
			c = 0
			r++
		}
	})
}

// binOp is a two-operand elementwise operation.
type binOp int

const (
	opAdd binOp = iota
	opSub
	opMul
	opDiv
	opMin
	opMax
	opPow
	opPRelu // a<0 ? a*b : a
	opFirst // a (broadcast copy)
	opMod   // integer/float modulo with the sign of the divisor (ONNX fmod=0)
	opFmod  // C fmod: sign of the dividend (ONNX fmod=1)
)

type number interface{ float32 | int64 }

// binRun runs op over broadcast operands with plan p.
func binRun[T number](pool *kernels.Pool, p *bplan, op binOp, dst, a, b []T) {
	p.each(pool, func(o, n, oa, ob int) {
		binRow(op, dst[o:o+n], a[oa:], b[ob:], p.ia, p.ib)
	})
}

// binRow computes one row. ia/ib are 1 for vector operands and 0 for a
// scalar operand (a[0] or b[0]).
func binRow[T number](op binOp, d, a, b []T, ia, ib int) {
	n := len(d)
	switch {
	case ia == 1 && ib == 1:
		a, b = a[:n], b[:n]
		switch op {
		case opAdd:
			for i := range d {
				d[i] = a[i] + b[i]
			}
		case opSub:
			for i := range d {
				d[i] = a[i] - b[i]
			}
		case opMul:
			for i := range d {
				d[i] = a[i] * b[i]
			}
		case opMin:
			for i := range d {
				d[i] = min(a[i], b[i])
			}
		case opMax:
			for i := range d {
				d[i] = max(a[i], b[i])
			}
		case opFirst:
			copy(d, a)
		default:
			for i := range d {
				d[i] = binSlow(op, a[i], b[i])
			}
		}
	case ia == 1:
		a = a[:n]
		s := b[0]
		switch op {
		case opAdd:
			for i := range d {
				d[i] = a[i] + s
			}
		case opSub:
			for i := range d {
				d[i] = a[i] - s
			}
		case opMul:
			for i := range d {
				d[i] = a[i] * s
			}
		case opMin:
			for i := range d {
				d[i] = min(a[i], s)
			}
		case opMax:
			for i := range d {
				d[i] = max(a[i], s)
			}
		case opFirst:
			copy(d, a)
		case opPRelu:
			for i, v := range a {
				if v < 0 {
					v *= s
				}
				d[i] = v
			}
		case opDiv:
			if f, ok := any(d).([]float32); ok {
				// multiply by the reciprocal would change rounding; keep a
				// true division but without the per-element dispatch.
				af := any(a).([]float32)
				sf := any(s).(float32)
				for i := range f {
					f[i] = af[i] / sf
				}
				return
			}
			for i := range d {
				d[i] = binSlow(op, a[i], s)
			}
		default:
			for i := range d {
				d[i] = binSlow(op, a[i], s)
			}
		}
	case ib == 1:
		b = b[:n]
		s := a[0]
		switch op {
		case opAdd:
			for i := range d {
				d[i] = s + b[i]
			}
		case opSub:
			for i := range d {
				d[i] = s - b[i]
			}
		case opMul:
			for i := range d {
				d[i] = s * b[i]
			}
		case opMin:
			for i := range d {
				d[i] = min(s, b[i])
			}
		case opMax:
			for i := range d {
				d[i] = max(s, b[i])
			}
		case opFirst:
			for i := range d {
				d[i] = s
			}
		default:
			for i := range d {
				d[i] = binSlow(op, s, b[i])
			}
		}
	default:
		v := binSlow(op, a[0], b[0])
		for i := range d {
			d[i] = v
		}
	}
}

// binSlow computes one element of any binary op (used for the less common
// operations and patterns).
func binSlow[T number](op binOp, x, y T) T {
	switch op {
	case opAdd:
		return x + y
	case opSub:
		return x - y
	case opMul:
		return x * y
	case opDiv:
		switch xv := any(x).(type) {
		case int64:
			yv := any(y).(int64)
			if yv == 0 {
				return 0 // integer division by zero: defined as 0 here, never a panic
			}
			return T(xv / yv)
		}
		return x / y
	case opMod:
		switch xv := any(x).(type) {
		case int64:
			yv := any(y).(int64)
			if yv == 0 {
				return 0
			}
			m := xv % yv
			if m != 0 && (m < 0) != (yv < 0) { // ONNX Mod (fmod=0): sign of divisor
				m += yv
			}
			return T(m)
		case float32:
			m := math.Mod(float64(xv), float64(any(y).(float32)))
			yv := float64(any(y).(float32))
			if m != 0 && (m < 0) != (yv < 0) {
				m += yv
			}
			return T(float32(m))
		}
	case opFmod:
		switch xv := any(x).(type) {
		case int64:
			yv := any(y).(int64)
			if yv == 0 {
				return 0
			}
			return T(xv % yv)
		case float32:
			return T(float32(math.Mod(float64(xv), float64(any(y).(float32)))))
		}
	case opMin:
		return min(x, y)
	case opMax:
		return max(x, y)
	case opPow:
		switch xv := any(x).(type) {
		case float32:
			return T(float32(math.Pow(float64(xv), float64(any(y).(float32)))))
		case int64:
			return T(ipow(xv, any(y).(int64)))
		}
	case opPRelu:
		if x < 0 {
			return x * y
		}
		return x
	case opFirst:
		return x
	}
	return 0
}

// ipow is integer exponentiation; negative exponents give 0 except for
// bases ±1, as integer division would.
func ipow(b, e int64) int64 {
	if e < 0 {
		switch b {
		case 1:
			return 1
		case -1:
			if e%2 == 0 {
				return 1
			}
			return -1
		}
		return 0
	}
	r := int64(1)
	for e > 0 {
		if e&1 == 1 {
			r *= b
		}
		b *= b
		e >>= 1
	}
	return r
}
