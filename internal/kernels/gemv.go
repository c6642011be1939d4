package kernels

// minParallelGemv is the matrix size (elements) below which a matrix-vector
// product runs on one thread.
const minParallelGemv = 1 << 15

// gemv handles Sgemm when m == 1 or n == 1: y = op(M)·x with M the other
// operand. These products are memory-bound, so they stream M once with
// vector dot products (rows of M contiguous) or axpys (columns contiguous).
func gemv(p *Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	var (
		x     []float32 // the vector operand, length k
		mat   []float32
		ld    int
		rows  bool // true: y_j = dot(x, mat[j*ld:][:k]); false: y = Σ_l x_l·mat[l*ld:][:len]
		ylen  int
		ystep int // stride of y in C
	)
	var xs *scratch
	gather := func(v []float32, stride int) []float32 {
		if stride == 1 {
			return v[:k]
		}
		xs = getScratch(k)
		for l := range xs.buf {
			xs.buf[l] = v[l*stride]
		}
		return xs.buf
	}
	if m == 1 {
		if transA {
			x = gather(a, lda)
		} else {
			x = a[:k]
		}
		mat, ld, rows, ylen, ystep = b, ldb, transB, n, 1
	} else {
		if transB {
			x = b[:k]
		} else {
			x = gather(b, ldb)
		}
		mat, ld, rows, ylen, ystep = a, lda, !transA, m, ldc
	}
	ys := getScratch(ylen)
	y := ys.buf
	t := p.Threads()
	if ylen*k < minParallelGemv {
		t = 1
	}
	if rows {
		parallelChunks(p, t, ylen, 4, func(lo, hi int) { dotRows(x, mat, ld, lo, hi, y) })
	} else {
		parallelChunks(p, t, ylen, 8, func(lo, hi int) {
			yy := y[lo:hi]
			clear(yy)
			for l, xv := range x {
				if xv != 0 {
					active.axpy(hi-lo, xv, mat[l*ld+lo:], yy)
				}
			}
		})
	}
	for i, v := range y {
		o := i * ystep
		if beta == 0 {
			c[o] = alpha * v
		} else {
			c[o] = alpha*v + beta*c[o]
		}
	}
	putScratch(ys)
	if xs != nil {
		putScratch(xs)
	}
}

// dotRows sets y[j] = dot(x, mat[j*ld:][:len(x)]) for j in [lo,hi).
func dotRows(x, mat []float32, ld, lo, hi int, y []float32) {
	k := len(x)
	var out [4]float32
	j := lo
	for ; j+4 <= hi; j += 4 {
		active.dot4(k, x, mat[j*ld:], ld, &out)
		copy(y[j:j+4], out[:])
	}
	for ; j < hi; j++ {
		active.dot4(k, x, mat[j*ld:], 0, &out)
		y[j] = out[0]
	}
}

// parallelChunks splits [0,n) over the threads of p (none if t <= 1) in
// chunks that are multiples of align (except the last).
func parallelChunks(p *Pool, t, n, align int, fn func(lo, hi int)) {
	units := ceilDiv(n, align)
	t = min(t, units)
	if t <= 1 {
		fn(0, n)
		return
	}
	p.Parallel(units, func(lo, hi int) { fn(lo*align, min(n, hi*align)) })
}
