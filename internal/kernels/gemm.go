package kernels

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major matrices, where
// op(A) is m×k and op(B) is k×n; op(X) is X or its transpose. lda, ldb, ldc
// are the row strides of A, B, C as stored. When beta is 0, C is not read.
func Sgemm(p *Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	p.Parallel(m, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := 0; j < n; j++ {
				var s float32
				for l := 0; l < k; l++ {
					var av, bv float32
					if transA {
						av = a[l*lda+i]
					} else {
						av = a[i*lda+l]
					}
					if transB {
						bv = b[j*ldb+l]
					} else {
						bv = b[l*ldb+j]
					}
					s += av * bv
				}
				if beta == 0 {
					c[i*ldc+j] = alpha * s
				} else {
					c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
				}
			}
		}
	})
}
