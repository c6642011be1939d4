package kernels

// Cache blocking of the packed SGEMM, tuned for Zen 3 (32 KiB L1d, 512 KiB
// L2 per core): a kc×16 B panel (16 KiB at kc=256) stays in L1 while the
// micro-kernel streams mc×kc of packed A (144 KiB) from L2; nc bounds the
// packed B block of one thread (kc×nc floats).
var (
	blockKC = 256
	blockMC = 144
	blockNC = 512
)

// minParallelWork is the m*n*k below which a GEMM runs on one thread.
const minParallelWork = 64 * 64 * 64

// Products with at most smallDim rows (or columns) and a large other
// operand (at least minGemvSplit elements) run as matrix-vector products.
const (
	smallDim     = 3
	minGemvSplit = 1 << 16
)

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major matrices, where
// op(A) is m×k and op(B) is k×n; op(X) is X or its transpose. lda, ldb, ldc
// are the row strides of A, B, C as stored. When beta is 0, C is not read.
//
// Large products pack A and B into panels and run the blocked micro-kernel
// on p's threads; m==1 or n==1 use a matrix-vector path.
func Sgemm(p *Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if m == 1 || n == 1 {
		gemv(p, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// A few rows (columns) against a large matrix, e.g. a fully connected
	// layer at batch 2-3: one matrix-vector product per row (column) reads the
	// large operand a few times instead of packing it.
	if m <= smallDim && n*k >= minGemvSplit {
		for i := 0; i < m; i++ {
			ai := a[i*lda:]
			if transA {
				ai = a[i:]
			}
			gemv(p, transA, transB, 1, n, k, alpha, ai, lda, b, ldb, beta, c[i*ldc:], ldc)
		}
		return
	}
	if n <= smallDim && m*k >= minGemvSplit {
		for j := 0; j < n; j++ {
			bj := b[j:]
			if transB {
				bj = b[j*ldb:]
			}
			gemv(p, transA, transB, m, 1, k, alpha, a, lda, bj, ldb, beta, c[j:], ldc)
		}
		return
	}
	ks := active
	mp := ceilDiv(m, ks.mr)
	s := getScratch(mp * ks.mr * k)
	pa := s.buf
	if t := p.Threads(); t > 1 && m*k >= 1<<16 {
		p.Parallel(mp, func(lo, hi int) { packA(ks.mr, pa, transA, m, k, a, lda, lo, hi) })
	} else {
		packA(ks.mr, pa, transA, m, k, a, lda, 0, mp)
	}
	j := gemmJob{ks: ks, m: m, n: n, k: k, alpha: alpha, beta: beta, pa: pa,
		bsrc: &matB{trans: transB, b: b, ldb: ldb}, c: c, ldc: ldc}
	j.run(p)
	putScratch(s)
}

// scaleC sets C = beta*C (C = 0 when beta is 0).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// PackedA is a constant left operand of SGEMM (m×k) stored in the
// micro-kernel's panel format, packed once and reused by SgemmPacked.
type PackedA struct {
	ks   *kernelSet
	m, k int
	data []float32
	// The original operand, for the matrix-vector path (n == 1).
	src   []float32
	trans bool
	ld    int
}

// PackA packs op(A) (m×k; A is stored k×m when transA) for SgemmPacked.
// The packed copy keeps a reference to a, which must not change afterwards:
// products with a single column (n == 1) read it directly.
func PackA(transA bool, m, k int, a []float32, lda int) *PackedA {
	ks := active
	mp := ceilDiv(m, ks.mr)
	pa := &PackedA{ks: ks, m: m, k: k, data: make([]float32, mp*ks.mr*k), src: a, trans: transA, ld: lda}
	packA(ks.mr, pa.data, transA, m, k, a, lda, 0, mp)
	return pa
}

// Rows is m, the number of rows of the packed matrix.
func (pa *PackedA) Rows() int { return pa.m }

// Cols is k, the number of columns of the packed matrix.
func (pa *PackedA) Cols() int { return pa.k }

// SgemmPacked computes C = alpha*A*op(B) + beta*C for a prepacked A (m×k);
// op(B) is k×n (B is stored n×k when transB). When beta is 0, C is not read.
func SgemmPacked(p *Pool, a *PackedA, transB bool, n int, alpha float32, b []float32, ldb int, beta float32, c []float32, ldc int) {
	m, k := a.m, a.k
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if n == 1 {
		gemv(p, a.trans, transB, m, n, k, alpha, a.src, a.ld, b, ldb, beta, c, ldc)
		return
	}
	j := gemmJob{ks: a.ks, m: m, n: n, k: k, alpha: alpha, beta: beta, pa: a.data,
		bsrc: &matB{trans: transB, b: b, ldb: ldb}, c: c, ldc: ldc}
	j.run(p)
}

// PackedB is a constant right operand of SGEMM (k×n) stored in the
// micro-kernel's panel format, packed once and reused by SgemmPackedB. It
// suits fully connected layers y = x·Wᵀ (PackB(true, in, out, W, in)).
type PackedB struct {
	ks   *kernelSet
	k, n int
	data []float32
	// The original operand, for the matrix-vector path (m == 1).
	src   []float32
	trans bool
	ld    int
}

// PackB packs op(B) (k×n; B is stored n×k when transB) for SgemmPackedB.
// The packed copy keeps a reference to b, which must not change afterwards:
// products with a single row (m == 1, e.g. a batch-1 fully connected layer)
// read it directly, which is the fastest way for such memory-bound products.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	ks := active
	nr := ks.nr
	np := ceilDiv(n, nr)
	pb := &PackedB{ks: ks, k: k, n: n, data: make([]float32, np*nr*k), src: b, trans: transB, ld: ldb}
	src := matB{trans: transB, b: b, ldb: ldb}
	for jp := 0; jp < np; jp++ {
		src.pack(ks, pb.data[jp*nr*k:(jp+1)*nr*k], 0, k, jp*nr, min(nr, n-jp*nr))
	}
	return pb
}

// UsesPackedB reports whether SgemmPackedB with m rows of A uses the packed
// copy of an n-column B of depth k. Otherwise (batch-1 fully connected
// layers: m == 1, or a few rows against a large matrix) it runs
// matrix-vector products on the original matrix, so a caller that knows m in
// advance need not keep a packed copy.
func UsesPackedB(m, n, k int) bool {
	return m > 1 && n > 1 && k > 0 && !(m <= smallDim && n*k >= minGemvSplit) && !(n <= smallDim && m*k >= minGemvSplit)
}

// Rows is k, the number of rows of the packed matrix.
func (pb *PackedB) Rows() int { return pb.k }

// Cols is n, the number of columns of the packed matrix.
func (pb *PackedB) Cols() int { return pb.n }

// SgemmPackedB computes C = alpha*op(A)*B + beta*C for a prepacked B (k×n);
// op(A) is m×k (A is stored k×m when transA). When beta is 0, C is not read.
func SgemmPackedB(p *Pool, transA bool, m int, alpha float32, a []float32, lda int, b *PackedB, beta float32, c []float32, ldc int) {
	n, k := b.n, b.k
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if !UsesPackedB(m, n, k) {
		// Matrix-vector products stream the original matrix.
		Sgemm(p, transA, b.trans, m, n, k, alpha, a, lda, b.src, b.ld, beta, c, ldc)
		return
	}
	ks := b.ks
	mp := ceilDiv(m, ks.mr)
	s := getScratch(mp * ks.mr * k)
	packA(ks.mr, s.buf, transA, m, k, a, lda, 0, mp)
	j := gemmJob{ks: ks, m: m, n: n, k: k, alpha: alpha, beta: beta, pa: s.buf, pb: b.data, c: c, ldc: ldc}
	j.run(p)
	putScratch(s)
}

// packA packs row panels [p0,p1) of op(A) (m×k) into dst: panel i holds rows
// i*mr..i*mr+mr-1 as k groups of mr floats, zero-padded past row m.
func packA(mr int, dst []float32, trans bool, m, k int, a []float32, lda int, p0, p1 int) {
	for ip := p0; ip < p1; ip++ {
		d := dst[ip*k*mr : (ip+1)*k*mr]
		i0 := ip * mr
		rows := min(mr, m-i0)
		if !trans {
			for r := 0; r < rows; r++ {
				src := a[(i0+r)*lda : (i0+r)*lda+k]
				for l, v := range src {
					d[l*mr+r] = v
				}
			}
		} else {
			for l := 0; l < k; l++ {
				copy(d[l*mr:l*mr+rows], a[l*lda+i0:l*lda+i0+rows])
			}
		}
		for r := rows; r < mr; r++ {
			for l := 0; l < k; l++ {
				d[l*mr+r] = 0
			}
		}
	}
}

// bSource packs blocks of a GEMM's right operand on demand.
type bSource interface {
	// pack writes op(B)[pc:pc+kc, j0:j0+nc] to dst as ceil(nc/nr) panels of
	// kc×nr floats (panel stride kc*nr; nr of kernel set ks), zero-padded
	// past column j0+nc.
	pack(ks *kernelSet, dst []float32, pc, kc, j0, nc int)
}

// matB is a plain row-major matrix used as B (stored n×k when trans).
type matB struct {
	trans bool
	b     []float32
	ldb   int
}

func (s *matB) pack(ks *kernelSet, dst []float32, pc, kc, j0, nc int) {
	nr := ks.nr
	for jp := 0; jp*nr < nc; jp++ {
		d := dst[jp*kc*nr : (jp+1)*kc*nr]
		j := j0 + jp*nr
		w := min(nr, nc-jp*nr)
		if !s.trans {
			if ks.im2col != nil && kc > 0 {
				// The im2col kernel with one tap copies rows (stride 1).
				_ = s.b[(pc+kc-1)*s.ldb+j+w-1]
				m := uint64(1)<<w - 1
				off := [1]int{0}
				masks := [4]uint16{uint16(m), uint16(m >> 16)}
				ks.im2col(1, kc, 1, d, s.b[pc*s.ldb+j:], s.ldb, off[:], masks[:], 0xFFFF, 0xFFFF)
				continue
			}
			if w == nr {
				for l := 0; l < kc; l++ {
					o := (pc+l)*s.ldb + j
					copy(d[l*nr:l*nr+nr], s.b[o:o+nr])
				}
			} else {
				for l := 0; l < kc; l++ {
					o := (pc+l)*s.ldb + j
					copy(d[l*nr:l*nr+w], s.b[o:o+w])
					clear(d[l*nr+w : (l+1)*nr])
				}
			}
			continue
		}
		for c := 0; c < w; c++ {
			o := (j+c)*s.ldb + pc
			for l, v := range s.b[o : o+kc] {
				d[l*nr+c] = v
			}
		}
		if w < nr {
			for l := 0; l < kc; l++ {
				clear(d[l*nr+w : (l+1)*nr])
			}
		}
	}
}

// epilogue is applied to each finished tile of C: a per-row bias (may be
// nil) and an activation. Bias and clamp-like activations (none, Relu, Clip)
// are fused into the micro-kernel; others run in Go on the hot tile.
type epilogue struct {
	bias      []float32
	act       Act
	lo, hi    float32
	clampOnly bool
}

func newEpilogue(bias []float32, act Act) *epilogue {
	lo, hi, ok := clampBounds(act)
	return &epilogue{bias: bias, act: act, lo: lo, hi: hi, clampOnly: ok}
}

// zeroBias is the bias of tiles without one.
var zeroBias [maxMR]float32

// gemmJob is one C = alpha*A*B + beta*C product with A already packed.
type gemmJob struct {
	ks          *kernelSet
	m, n, k     int
	alpha, beta float32
	pa          []float32 // A panels (mr rows, depth k)
	pb          []float32 // B panels (nr columns, depth k), or nil to use bsrc
	bsrc        bSource
	kAlign      int // if > 1, K blocks are multiples of kAlign
	c           []float32
	ldc         int
	epi         *epilogue // nil: none
	// pfB: prefetch the next B panel of pb while computing one (B is
	// streamed weights, e.g. the transposed convolution), if the kernel set
	// can.
	pfB bool
}

// run splits the product over p's threads, along N (each thread packs its
// own columns of B) or along M when that balances better, e.g. few columns.
func (j *gemmJob) run(p *Pool) {
	mr, nr := j.ks.mr, j.ks.nr
	t := p.Threads()
	if j.m*j.n*j.k < minParallelWork {
		t = 1
	}
	mp, np := ceilDiv(j.m, mr), ceilDiv(j.n, nr)
	splitM := false
	if t > 1 {
		splitM = j.splitCostM(t, mp, np) < j.splitCostN(t, mp, np)
		if splitM {
			t = min(t, mp)
		} else {
			t = min(t, np)
		}
	}
	if t <= 1 {
		j.block(0, j.m, 0, j.n)
		return
	}
	// The pool hands out chunks of panels dynamically: one per thread in
	// an M split (each chunk packs all of B), a few in an N split.
	if splitM {
		p.parallel(mp, t, func(lo, hi int) { j.block(lo*mr, min(j.m, hi*mr), 0, j.n) })
	} else {
		p.Parallel(np, func(lo, hi int) { j.block(0, j.m, lo*nr, min(j.n, hi*nr)) })
	}
}

// Cost model for splitting a product over threads, in units of one mr×nr
// tile: a B panel of at most nr/2 columns costs half, and packing a B panel
// costs about packCost tiles (every thread of an M split packs all of B).
const packCost = 1.5

// panelWeight is the relative cost of B panel jp.
func (j *gemmJob) panelWeight(jp int) float64 {
	if nr := j.ks.nr; j.n-jp*nr <= nr/2 {
		return 0.5
	}
	return 1
}

func (j *gemmJob) packWeight() float64 {
	if j.pb != nil {
		return 0
	}
	return packCost
}

// splitCostN is the busiest thread's cost when the B panels are split.
func (j *gemmJob) splitCostN(t, mp, np int) float64 {
	worst := 0.0
	for i := 0; i < t; i++ {
		c := 0.0
		for jp := np * i / t; jp < np*(i+1)/t; jp++ {
			c += float64(mp)*j.panelWeight(jp) + j.packWeight()
		}
		worst = max(worst, c)
	}
	return worst
}

// splitCostM is the busiest thread's cost when the A panels are split.
func (j *gemmJob) splitCostM(t, mp, np int) float64 {
	w := 0.0
	for jp := 0; jp < np; jp++ {
		w += j.panelWeight(jp)
	}
	return float64(ceilDiv(mp, t))*w + float64(np)*j.packWeight()
}

// block computes rows [m0,m1) × columns [n0,n1) of C; m0 is a multiple of
// mr and n0 a multiple of nr.
func (j *gemmJob) block(m0, m1, n0, n1 int) {
	if m0 >= m1 || n0 >= n1 {
		return
	}
	ks := j.ks
	nr := ks.nr
	k := j.k
	kcMax := ceilDiv(k, ceilDiv(k, blockKC))
	if a := j.kAlign; a > 1 && k%a == 0 {
		// K blocks of whole multiples of kAlign (whole input channels of
		// an im2col B).
		kcMax = ceilDiv(k/a, ceilDiv(k, blockKC)) * a
	}
	blockMC, blockNC := blockMCFor(ks), blockNC
	if j.pb == nil && m1-m0 <= blockMC {
		// All of this thread's A fits the L2 block: pack one B panel at a
		// time and use it while it is in L1.
		s := getScratch(kcMax * nr)
		for jj := n0; jj < n1; jj += nr {
			nn := min(nr, n1-jj)
			for pc := 0; pc < k; pc += kcMax {
				kc := min(kcMax, k-pc)
				j.bsrc.pack(ks, s.buf, pc, kc, jj, nn)
				j.panel(m0, m1, jj, nn, pc, kc, s.buf)
			}
		}
		putScratch(s)
		return
	}
	var s *scratch
	if j.pb == nil {
		s = getScratch(kcMax * blockNC)
	}
	for jc := n0; jc < n1; jc += blockNC {
		nc := min(blockNC, n1-jc)
		for pc := 0; pc < k; pc += kcMax {
			kc := min(kcMax, k-pc)
			var bb []float32
			var bstride int
			if j.pb != nil {
				bb, bstride = j.pb[(jc/nr)*k*nr+pc*nr:], k*nr
			} else {
				j.bsrc.pack(ks, s.buf, pc, kc, jc, nc)
				bb, bstride = s.buf, kc*nr
			}
			for ic := m0; ic < m1; ic += blockMC {
				i1 := min(ic+blockMC, m1)
				for jr := 0; jr < nc; jr += nr {
					j.panel(ic, i1, jc+jr, min(nr, nc-jr), pc, kc, bb[(jr/nr)*bstride:])
				}
			}
		}
	}
	if s != nil {
		putScratch(s)
	}
}

// blockMCFor is the M block (rows of packed A kept in L2) for a kernel set:
// a multiple of its mr near blockMC.
func blockMCFor(ks *kernelSet) int {
	return max(1, blockMC/ks.mr) * ks.mr
}

// Micro-kernel flags.
const (
	kAccum    = 1 // add the old C
	kEpilogue = 2 // add the row bias and clamp
)

// panel runs the micro-kernel for rows [i0,i1) of C against one packed B
// panel b (columns jj..jj+nn, depth pc..pc+kc).
func (j *gemmJob) panel(i0, i1, jj, nn, pc, kc int, b []float32) {
	mr := j.ks.mr
	flags := 0
	if pc > 0 || j.beta != 0 {
		flags |= kAccum
	}
	epi := j.epi
	if pc+kc == j.k && epi != nil {
		flags |= kEpilogue
	} else {
		epi = nil
	}
	lo, hi := float32(0), float32(0)
	if epi != nil {
		lo, hi = epi.lo, epi.hi
	}
	c, ldc := j.c, j.ldc
	if pc == 0 && j.beta != 0 && j.beta != 1 {
		for r := i0; r < i1; r++ {
			row := c[r*ldc+jj : r*ldc+jj+nn]
			for t := range row {
				row[t] *= j.beta
			}
		}
	}
	tiles, rem := (i1-i0)/mr, (i1-i0)%mr
	for _, part := range [2]struct{ i, rows, tiles int }{{i0, mr, tiles}, {i0 + tiles*mr, rem, 1}} {
		if part.tiles == 0 || part.rows == 0 {
			continue
		}
		bias, bstride := zeroBias[:], 0
		if epi != nil && epi.bias != nil {
			bias, bstride = epi.bias[part.i:], mr
		}
		a := j.pa[(part.i/mr)*j.k*mr+pc*mr:]
		if j.pfB && j.pb != nil && j.ks.tilesPF != nil {
			j.ks.tilesPF(part.rows, nn, part.tiles, kc, a, j.k*mr, b, c[part.i*ldc+jj:], ldc, j.alpha, flags, bias, bstride, lo, hi, j.k*j.ks.nr)
			continue
		}
		j.ks.tiles(part.rows, nn, part.tiles, kc, a, j.k*mr, b,
			c[part.i*ldc+jj:], ldc, j.alpha, flags, bias, bstride, lo, hi)
	}
	if epi != nil && !epi.clampOnly {
		for r := i0; r < i1; r++ {
			epi.act.Apply(c[r*ldc+jj : r*ldc+jj+nn])
		}
	}
}
