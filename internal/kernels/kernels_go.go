package kernels

// Portable Go versions of the kernel hooks in dispatch.go. They are used on
// architectures without assembly kernels, under the purego build tag, and on
// amd64 CPUs without AVX2/FMA.

// Tile of the portable (and AVX2) micro-kernel.
const (
	goMR = 6
	goNR = 16
)

// microKernelGo is the portable 6×16 micro-kernel. It works on 2×4 sub-blocks
// so the accumulators stay in registers.
func microKernelGo(k int, a, b, c []float32, ldc int, alpha float32, flags int, bias []float32, lo, hi float32) {
	accum := flags&kAccum != 0
	a = a[:k*goMR]
	b = b[:k*goNR]
	for r := 0; r < goMR; r += 2 {
		c0 := c[r*ldc : r*ldc+goNR]
		c1 := c[(r+1)*ldc : (r+1)*ldc+goNR]
		for j := 0; j < goNR; j += 4 {
			var s00, s01, s02, s03, s10, s11, s12, s13 float32
			ai, bi := r, j
			for l := 0; l < k; l++ {
				bb := b[bi : bi+4 : bi+4]
				a0, a1 := a[ai], a[ai+1]
				b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
				s00 += a0 * b0
				s01 += a0 * b1
				s02 += a0 * b2
				s03 += a0 * b3
				s10 += a1 * b0
				s11 += a1 * b1
				s12 += a1 * b2
				s13 += a1 * b3
				ai += goMR
				bi += goNR
			}
			d0, d1 := c0[j:j+4:j+4], c1[j:j+4:j+4]
			if accum {
				d0[0] += alpha * s00
				d0[1] += alpha * s01
				d0[2] += alpha * s02
				d0[3] += alpha * s03
				d1[0] += alpha * s10
				d1[1] += alpha * s11
				d1[2] += alpha * s12
				d1[3] += alpha * s13
			} else {
				d0[0] = alpha * s00
				d0[1] = alpha * s01
				d0[2] = alpha * s02
				d0[3] = alpha * s03
				d1[0] = alpha * s10
				d1[1] = alpha * s11
				d1[2] = alpha * s12
				d1[3] = alpha * s13
			}
		}
	}
	if flags&kEpilogue != 0 {
		for r := 0; r < goMR; r++ {
			row := c[r*ldc : r*ldc+goNR]
			b := bias[r]
			for j, v := range row {
				row[j] = min(max(v+b, lo), hi)
			}
		}
	}
}

func microPanelGo(tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32) {
	for t := 0; t < tiles; t++ {
		microKernelGo(k, a[t*astride:], b, c[t*goMR*ldc:], ldc, alpha, flags, bias[t*bstride:], lo, hi)
	}
}

// copyRowsGo returns a copyRows for rows of w values.
func copyRowsGo(w int) func(n int, dst []float32, dstStride int, src []float32, srcStride, stride int) {
	return func(n int, dst []float32, dstStride int, src []float32, srcStride, stride int) {
		for r := 0; r < n; r++ {
			d := dst[r*dstStride : r*dstStride+w]
			s := src[r*srcStride : r*srcStride+stride*(w-1)+1]
			if stride == 1 {
				copy(d, s)
				continue
			}
			for c := range d {
				d[c] = s[c*stride]
			}
		}
	}
}

func dot4Go(n int, x, w []float32, ldw int, out *[4]float32) {
	x = x[:n]
	w0 := w[:n]
	w1 := w[ldw : ldw+n]
	w2 := w[2*ldw : 2*ldw+n]
	w3 := w[3*ldw : 3*ldw+n]
	var s0, s1, s2, s3 float32
	for i, v := range x {
		s0 += v * w0[i]
		s1 += v * w1[i]
		s2 += v * w2[i]
		s3 += v * w3[i]
	}
	*out = [4]float32{s0, s1, s2, s3}
}

func axpyGo(n int, alpha float32, x, y []float32) {
	x = x[:n]
	y = y[:n]
	i := 0
	for ; i+4 <= n; i += 4 {
		xx := x[i : i+4 : i+4]
		yy := y[i : i+4 : i+4]
		yy[0] += alpha * xx[0]
		yy[1] += alpha * xx[1]
		yy[2] += alpha * xx[2]
		yy[3] += alpha * xx[3]
	}
	for ; i < n; i++ {
		y[i] += alpha * x[i]
	}
}

// peakSink keeps the portable peak loop from being optimised away.
var peakSink float32

func peakFMAGo(n int) {
	var s [12]float32
	x, y := float32(1.0000001), float32(0.9999999)
	for i := 0; i < n; i++ {
		for u := 0; u < 8; u++ {
			s[0] += x * y
			s[1] += x * y
			s[2] += x * y
			s[3] += x * y
			s[4] += x * y
			s[5] += x * y
			s[6] += x * y
			s[7] += x * y
			s[8] += x * y
			s[9] += x * y
			s[10] += x * y
			s[11] += x * y
		}
	}
	for _, v := range s {
		peakSink += v
	}
}
