package kernels

import "math"

// MaxPool3x3 max-pools nc planes of h×w floats (plane i at in[i*h*w:]) with
// a 3×3 window, stride s (1 or 2) in both directions, no dilation and
// padding padT/padL, into nc contiguous planes of oh×ow floats. Window
// positions outside the image are ignored (as ONNX MaxPool pads with -Inf),
// and a NaN in a window makes its output NaN. It runs on the calling
// goroutine and reports false, doing nothing, when the selected kernel set
// has no such kernel; callers then pool in Go.
func MaxPool3x3(s, nc int, in []float32, h, w int, out []float32, oh, ow, padT, padL int) bool {
	ks := active
	if ks.maxPool3x3 == nil || (s != 1 && s != 2) || nc <= 0 || oh <= 0 || ow <= 0 {
		return false
	}
	// Every window must overlap the image, and the masked loads of a chunk
	// (at most 16*s+2 floats from its first tap) must start and end inside
	// an image row or the padding of the -Inf row.
	if padT < 0 || padL < 0 || padT > 2 || padL > 2 || (oh-1)*s-padT >= h || (ow-1)*s-padL >= w {
		return false
	}
	var mbuf [4 * 16]uint16
	var obuf [16]uint16
	nch, masks, omasks := direct3x3Masks(s, w, ow, padL, mbuf[:], obuf[:])
	// The -Inf row has 32 floats of slack on both sides: masked-off lanes
	// of a load may start before it or run past it and must not touch
	// another (cold) page.
	sc := getScratch(w + 64)
	ninf := float32(math.Inf(-1))
	for i := range sc.buf {
		sc.buf[i] = ninf
	}
	ks.maxPool3x3(s, nc, in, h*w, out, h, w, oh, ow, padT, nch, -padL, masks, omasks, sc.buf[32:32+w])
	putScratch(sc)
	return true
}
