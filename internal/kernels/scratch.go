package kernels

import (
	"sync"
	"unsafe"
)

// scratch is a reusable float32 buffer whose data starts on a 64-byte
// (cache-line) boundary.
type scratch struct {
	raw []float32
	buf []float32
}

var scratchPool sync.Pool

// getScratch returns a buffer of at least n floats (contents undefined).
func getScratch(n int) *scratch {
	s, _ := scratchPool.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	if cap(s.buf) < n {
		s.raw = make([]float32, n+16)
		off := 0
		if r := uintptr(unsafe.Pointer(&s.raw[0])) % 64; r != 0 {
			off = int((64 - r) / 4)
		}
		s.buf = s.raw[off : off+n]
	}
	s.buf = s.buf[:n]
	return s
}

func putScratch(s *scratch) { scratchPool.Put(s) }

func ceilDiv(a, b int) int { return (a + b - 1) / b }
