package kernels

// Straightforward reference implementations the fast kernels are tested
// against (the package's original naive code, computing in float64).

func refSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
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
				s += float64(av) * float64(bv)
			}
			if beta == 0 {
				c[i*ldc+j] = float32(float64(alpha) * s)
			} else {
				c[i*ldc+j] = float32(float64(alpha)*s + float64(beta)*float64(c[i*ldc+j]))
			}
		}
	}
}

func refConv(p ConvParams, weight, bias []float32, act Act, in, out []float32) {
	icg, ocg := p.InC/p.Group, p.OutC/p.Group
	for oc := 0; oc < p.OutC; oc++ {
		g := oc / ocg
		o := out[oc*p.OutH*p.OutW : (oc+1)*p.OutH*p.OutW]
		var b float64
		if bias != nil {
			b = float64(bias[oc])
		}
		for oy := 0; oy < p.OutH; oy++ {
			for ox := 0; ox < p.OutW; ox++ {
				s := b
				for ic := 0; ic < icg; ic++ {
					ch := in[(g*icg+ic)*p.InH*p.InW:]
					w := weight[((oc*icg)+ic)*p.KH*p.KW:]
					for ky := 0; ky < p.KH; ky++ {
						iy := oy*p.StrideH - p.PadT + ky*p.DilH
						if iy < 0 || iy >= p.InH {
							continue
						}
						for kx := 0; kx < p.KW; kx++ {
							ix := ox*p.StrideW - p.PadL + kx*p.DilW
							if ix < 0 || ix >= p.InW {
								continue
							}
							s += float64(ch[iy*p.InW+ix]) * float64(w[ky*p.KW+kx])
						}
					}
				}
				o[oy*p.OutW+ox] = float32(s)
			}
		}
		act.Apply(o)
	}
}
