package kernels

import "math"

// ActKind is an activation function that can be fused into a kernel's output.
type ActKind int

// Activation kinds.
const (
	ActNone ActKind = iota
	ActRelu
	ActLeakyRelu   // x<0: Alpha*x
	ActClip        // min(max(x, Alpha), Beta)
	ActSigmoid     // 1/(1+e^-x)
	ActHardSigmoid // max(0, min(1, Alpha*x+Beta))
	ActHardSwish   // x*max(0, min(1, x/6+0.5))
	ActTanh
)

// Act is an activation with its parameters.
type Act struct {
	Kind        ActKind
	Alpha, Beta float32
}

// Apply applies the activation to x in place.
func (a Act) Apply(x []float32) {
	switch a.Kind {
	case ActNone:
	case ActRelu:
		for i, v := range x {
			if v < 0 {
				x[i] = 0
			}
		}
	case ActLeakyRelu:
		for i, v := range x {
			if v < 0 {
				x[i] = a.Alpha * v
			}
		}
	case ActClip:
		for i, v := range x {
			if v < a.Alpha {
				v = a.Alpha
			}
			if v > a.Beta {
				v = a.Beta
			}
			x[i] = v
		}
	case ActSigmoid:
		for i, v := range x {
			x[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	case ActHardSigmoid:
		for i, v := range x {
			x[i] = max(0, min(1, a.Alpha*v+a.Beta))
		}
	case ActHardSwish:
		for i, v := range x {
			x[i] = v * max(0, min(1, v/6+0.5))
		}
	case ActTanh:
		for i, v := range x {
			x[i] = float32(math.Tanh(float64(v)))
		}
	}
}

// AddAct sets dst[i] = act(a[i] + b[i]) for i < len(dst) (a and b at least
// as long; dst may alias either): a residual connection with its fused
// activation in one pass over memory.
func AddAct(dst, a, b []float32, act Act) {
	n := len(dst)
	a, b = a[:n], b[:n]
	if lo, hi, ok := clampBounds(act); ok && active.addClamp != nil {
		active.addClamp(n, dst, a, b, lo, hi)
		return
	}
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
	act.Apply(dst)
}
