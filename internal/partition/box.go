// Package partition turns a plan (which device computes which part of each
// operator) into one program per device — compute steps over weight shards
// and point-to-point transfers — and runs those programs in-process for
// tests. It holds the layout algebra's geometry: boxes, the region of a
// tensor each device holds in a layout, and per-operator rules mapping an
// output region to the input regions it needs.
package partition

import (
	"fmt"
	"strings"

	"github.com/iop-edge/iop/internal/tensor"
)

// Range is the half-open interval [Lo, Hi) of one axis.
type Range struct{ Lo, Hi int }

// Len is the number of indices in r (0 if empty).
func (r Range) Len() int { return max(0, r.Hi-r.Lo) }

// Box is a rectangular region of a tensor: one Range per axis.
type Box []Range

// Full is the box covering all of shape.
func Full(shape tensor.Shape) Box {
	b := make(Box, len(shape))
	for i, d := range shape {
		b[i] = Range{0, d}
	}
	return b
}

// Empty reports whether b holds no element.
func (b Box) Empty() bool {
	for _, r := range b {
		if r.Len() == 0 {
			return true
		}
	}
	return false
}

// Numel is the number of elements in b.
func (b Box) Numel() int {
	n := 1
	for _, r := range b {
		n *= r.Len()
	}
	return n
}

// Shape is the extent of b on each axis.
func (b Box) Shape() tensor.Shape {
	s := make(tensor.Shape, len(b))
	for i, r := range b {
		s[i] = r.Len()
	}
	return s
}

// Intersect is the common part of a and b (possibly empty).
func (b Box) Intersect(o Box) Box {
	out := make(Box, len(b))
	for i := range b {
		out[i] = Range{max(b[i].Lo, o[i].Lo), min(b[i].Hi, o[i].Hi)}
		if out[i].Hi < out[i].Lo {
			out[i].Hi = out[i].Lo
		}
	}
	return out
}

// Contains reports whether o lies inside b.
func (b Box) Contains(o Box) bool {
	for i := range b {
		if o[i].Lo < b[i].Lo || o[i].Hi > b[i].Hi {
			return false
		}
	}
	return true
}

// Equal reports whether a and b are the same box.
func (b Box) Equal(o Box) bool {
	if len(b) != len(o) {
		return false
	}
	for i := range b {
		if b[i] != o[i] {
			return false
		}
	}
	return true
}

// Rel expresses b in the coordinates of an enclosing box origin.
func (b Box) Rel(origin Box) Box {
	out := make(Box, len(b))
	for i := range b {
		out[i] = Range{b[i].Lo - origin[i].Lo, b[i].Hi - origin[i].Lo}
	}
	return out
}

// Clone copies b.
func (b Box) Clone() Box { return append(Box(nil), b...) }

func (b Box) String() string {
	parts := make([]string, len(b))
	for i, r := range b {
		parts[i] = fmt.Sprintf("%d:%d", r.Lo, r.Hi)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// CopyBox copies region srcBox of src (in src's own coordinates) into
// region dstBox of dst; both boxes have the same shape. With add, the values
// are added instead of copied.
func CopyBox(dst *tensor.Tensor, dstBox Box, src *tensor.Tensor, srcBox Box, add bool) {
	if srcBox.Empty() {
		return
	}
	rank := len(srcBox)
	if rank == 0 {
		if add {
			dst.F[0] += src.F[0]
		} else {
			dst.F[0] = src.F[0]
		}
		return
	}
	ss, ds := src.Shape.Strides(), dst.Shape.Strides()
	inner := srcBox[rank-1].Len()
	idx := make([]int, rank-1)
	for {
		so, do := srcBox[rank-1].Lo, dstBox[rank-1].Lo
		for a := 0; a < rank-1; a++ {
			so += (srcBox[a].Lo + idx[a]) * ss[a]
			do += (dstBox[a].Lo + idx[a]) * ds[a]
		}
		s := src.F[so : so+inner]
		d := dst.F[do : do+inner]
		if add {
			for i, v := range s {
				d[i] += v
			}
		} else {
			copy(d, s)
		}
		a := rank - 2
		for ; a >= 0; a-- {
			idx[a]++
			if idx[a] < srcBox[a].Len() {
				break
			}
			idx[a] = 0
		}
		if a < 0 {
			return
		}
	}
}

// Extract returns region box of t as a new tensor.
func Extract(t *tensor.Tensor, box Box) *tensor.Tensor {
	out := tensor.New(t.DType, box.Shape())
	if t.DType != tensor.Float32 {
		// Integer/bool tensors are small (shapes); copy element by element.
		extractGeneric(out, t, box)
		return out
	}
	CopyBox(out, Full(out.Shape), t, box, false)
	return out
}

func extractGeneric(out, t *tensor.Tensor, box Box) {
	st := t.Shape.Strides()
	n := out.Len()
	os := out.Shape.Strides()
	for i := 0; i < n; i++ {
		off, rem := 0, i
		for a := range box {
			k := rem / max(os[a], 1)
			rem -= k * os[a]
			off += (box[a].Lo + k) * st[a]
		}
		switch t.DType {
		case tensor.Int64:
			out.I[i] = t.I[off]
		case tensor.Bool:
			out.B[i] = t.B[off]
		}
	}
}
