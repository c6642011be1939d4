// Package tensor holds the dense tensor type every other package exchanges:
// a shape, an element type and a flat row-major buffer.
//
// Float32 is the compute type. Int64 carries shapes, indices and axes (the
// values of ONNX shape subgraphs); Bool exists only as an intermediate of
// shape arithmetic. Other ONNX element types are converted on import or
// rejected there with an error naming the type.
package tensor

import (
	"fmt"
	"strings"
)

// DType is a tensor element type.
type DType int

// Element types.
const (
	Float32 DType = iota + 1
	Int64
	Bool
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Size is the size in bytes of one element.
func (d DType) Size() int {
	switch d {
	case Float32:
		return 4
	case Int64:
		return 8
	case Bool:
		return 1
	}
	return 0
}

// Shape is a tensor shape; a rank-0 shape (nil or empty) is a scalar.
type Shape []int

// Numel is the number of elements (1 for a scalar).
func (s Shape) Numel() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of s.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// Strides returns the row-major element strides of s.
func (s Shape) Strides() []int {
	st := make([]int, len(s))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= s[i]
	}
	return st
}

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, "×") + "]"
}

// Tensor is a dense row-major tensor. Exactly one of F, I, B is used,
// according to DType; its length equals Shape.Numel().
type Tensor struct {
	Shape Shape
	DType DType
	F     []float32
	I     []int64
	B     []bool
}

// New allocates a zeroed tensor.
func New(dt DType, shape Shape) *Tensor {
	t := &Tensor{Shape: shape.Clone(), DType: dt}
	n := shape.Numel()
	switch dt {
	case Float32:
		t.F = make([]float32, n)
	case Int64:
		t.I = make([]int64, n)
	case Bool:
		t.B = make([]bool, n)
	}
	return t
}

// FromFloat32 wraps data (not copied) as a float32 tensor of the given shape.
func FromFloat32(shape Shape, data []float32) *Tensor {
	if len(data) != shape.Numel() {
		panic(fmt.Sprintf("tensor.FromFloat32: %d values for shape %v", len(data), shape))
	}
	return &Tensor{Shape: shape.Clone(), DType: Float32, F: data}
}

// FromInt64 wraps data (not copied) as an int64 tensor of the given shape.
func FromInt64(shape Shape, data []int64) *Tensor {
	if len(data) != shape.Numel() {
		panic(fmt.Sprintf("tensor.FromInt64: %d values for shape %v", len(data), shape))
	}
	return &Tensor{Shape: shape.Clone(), DType: Int64, I: data}
}

// Len is the number of elements.
func (t *Tensor) Len() int { return t.Shape.Numel() }

// Bytes is the size of the data in bytes.
func (t *Tensor) Bytes() int64 { return int64(t.Len()) * int64(t.DType.Size()) }

// Clone deep-copies t.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{Shape: t.Shape.Clone(), DType: t.DType}
	if t.F != nil {
		c.F = append([]float32(nil), t.F...)
	}
	if t.I != nil {
		c.I = append([]int64(nil), t.I...)
	}
	if t.B != nil {
		c.B = append([]bool(nil), t.B...)
	}
	return c
}

// Reshaped returns a tensor sharing t's data with a new shape of equal size.
func (t *Tensor) Reshaped(shape Shape) *Tensor {
	if shape.Numel() != t.Len() {
		panic(fmt.Sprintf("tensor.Reshaped: %v to %v", t.Shape, shape))
	}
	return &Tensor{Shape: shape.Clone(), DType: t.DType, F: t.F, I: t.I, B: t.B}
}

// Ints returns the values of an integer tensor as ints (for shapes and axes).
func (t *Tensor) Ints() []int {
	out := make([]int, t.Len())
	switch t.DType {
	case Int64:
		for i, v := range t.I {
			out[i] = int(v)
		}
	case Float32:
		for i, v := range t.F {
			out[i] = int(v)
		}
	case Bool:
		for i, v := range t.B {
			if v {
				out[i] = 1
			}
		}
	}
	return out
}

func (t *Tensor) String() string {
	return fmt.Sprintf("%s%v", t.DType, t.Shape)
}
