package transport

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/iop-edge/iop/internal/tensor"
)

// littleEndian reports whether this machine stores words little-endian; the
// wire format is little-endian, so there tensor memory is sent and received
// as it is, without per-element encoding.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// rawBytes is the memory of t's data as bytes (float32 and int64 only).
func rawBytes(t *tensor.Tensor) []byte {
	switch t.DType {
	case tensor.Float32:
		if len(t.F) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.F))), len(t.F)*4)
	case tensor.Int64:
		if len(t.I) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.I))), len(t.I)*8)
	}
	return nil
}

// tensorChunk returns bytes [off, off+n) of t's wire encoding: a view of the
// tensor's memory on little-endian machines, otherwise an encoding into scr
// (grown and returned for reuse).
func tensorChunk(t *tensor.Tensor, off, n int, scr []byte) ([]byte, []byte) {
	if littleEndian && t.DType != tensor.Bool {
		return rawBytes(t)[off : off+n], scr
	}
	if cap(scr) < n {
		scr = make([]byte, n)
	}
	b := scr[:n]
	switch t.DType {
	case tensor.Float32:
		for i := range n / 4 {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(t.F[off/4+i]))
		}
	case tensor.Int64:
		for i := range n / 8 {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(t.I[off/8+i]))
		}
	case tensor.Bool:
		for i := range n {
			b[i] = 0
			if t.B[off+i] {
				b[i] = 1
			}
		}
	}
	return b, scr
}

// tensorDest returns where to read bytes [off, off+n) of t's wire encoding:
// t's own memory (direct) on little-endian machines, otherwise *scr, which
// storeChunk then decodes into t.
func tensorDest(t *tensor.Tensor, off, n int, scr *[]byte) ([]byte, bool) {
	if littleEndian && t.DType != tensor.Bool {
		return rawBytes(t)[off : off+n], true
	}
	if cap(*scr) < n {
		*scr = make([]byte, n)
	}
	return (*scr)[:n], false
}

// storeChunk decodes wire bytes b at byte offset off into t.
func storeChunk(t *tensor.Tensor, off int, b []byte) {
	switch t.DType {
	case tensor.Float32:
		for i := range len(b) / 4 {
			t.F[off/4+i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case tensor.Int64:
		for i := range len(b) / 8 {
			t.I[off/8+i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case tensor.Bool:
		for i, v := range b {
			t.B[off+i] = v != 0
		}
	}
}
