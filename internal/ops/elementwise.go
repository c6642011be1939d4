package ops

import (
	"math"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

func init() {
	num := []tensor.DType{tensor.Float32, tensor.Int64}
	Register("Add", binaryDef(opAdd, num...))
	Register("Sub", binaryDef(opSub, num...))
	Register("Mul", binaryDef(opMul, num...))
	Register("Div", binaryDef(opDiv, num...))
	Register("Mod", binaryDef(opMod, num...))
	Register("Pow", binaryDef(opPow, num...))
	Register("PRelu", preluDef())

	Register("Sum", variadicDef(opAdd, false))
	Register("Mean", variadicDef(opAdd, true))
	Register("Max", variadicDef(opMax, false))
	Register("Min", variadicDef(opMin, false))

	for _, c := range []struct {
		name string
		op   cmpOp
	}{{"Equal", cmpEq}, {"Less", cmpLt}, {"Greater", cmpGt}, {"LessOrEqual", cmpLe}, {"GreaterOrEqual", cmpGe},
		{"And", cmpAnd}, {"Or", cmpOr}, {"Xor", cmpXor}} {
		Register(c.name, compareDef(c.op))
	}
	Register("Where", whereDef())
	Register("Not", &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 1, 1, 1, 1); err != nil {
				return nil, err
			}
			if err := wantDType(n, in, 0, tensor.Bool); err != nil {
				return nil, err
			}
			return one(tensor.Bool, in[0].Shape.Clone()), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
				for i, v := range in[0].B {
					out[0].B[i] = !v
				}
				return nil
			}), nil
		},
		FLOPs: zeroFLOPs,
		Class: ClassElem,
	})

	for name, u := range unaryOps {
		Register(name, unaryDef(name, u))
	}
	Register("Clip", clipDef())
}

// binaryDef defines a two-operand broadcasting operator.
func binaryDef(op binOp, dts ...tensor.DType) *Def {
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 2, 2, 1, 1); err != nil {
				return nil, err
			}
			for i := range in {
				if err := wantDType(n, in, i, dts...); err != nil {
					return nil, err
				}
			}
			if op != opPow && in[0].DType != in[1].DType {
				return nil, Errorf(n, "operand types differ: %v and %v", in[0].DType, in[1].DType)
			}
			s, err := broadcastShapes(n, in[0].Shape, in[1].Shape)
			if err != nil {
				return nil, err
			}
			return one(in[0].DType, s), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			p := newBPlan(in[0].Shape, in[1].Shape, out[0].Shape)
			op := op
			if op == opMod && n.Int("fmod", 0) != 0 {
				op = opFmod
			}
			// An activation fused by passes.FuseActivations (Add+Relu of a
			// residual connection) runs on each chunk while it is hot.
			act, err := fusedAct(n)
			if err != nil {
				return nil, err
			}
			if n.Has(graph.FusedActivation) && (op != opAdd || out[0].DType != tensor.Float32) {
				return nil, Errorf(n, "a fused activation needs a float32 Add, not %s of %v", n.Op, out[0].DType)
			}
			return KernelFunc(func(pool *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 2); err != nil {
					return err
				}
				a, b := in[0], in[1]
				if b.DType != a.DType { // Pow with a mixed-type exponent
					b = castTensor(b, a.DType)
				}
				switch {
				case a.DType == tensor.Float32 && op == opAdd:
					dst := out[0].F
					p.each(pool, func(o, n, oa, ob int) {
						if p.ia == 1 && p.ib == 1 {
							kernels.AddAct(dst[o:o+n], a.F[oa:], b.F[ob:], act)
							return
						}
						binRow(op, dst[o:o+n], a.F[oa:], b.F[ob:], p.ia, p.ib)
						act.Apply(dst[o : o+n])
					})
				case a.DType == tensor.Float32:
					binRun(pool, p, op, out[0].F, a.F, b.F)
				case a.DType == tensor.Int64:
					binRun(pool, p, op, out[0].I, a.I, b.I)
				default:
					return Errorf(n, "unsupported type %v", a.DType)
				}
				return nil
			}), nil
		},
		FLOPs: numelFLOPs(1),
		Class: ClassElem,
	}
}

// preluDef defines PRelu: slope broadcasts unidirectionally to X. A 1-D
// slope of C values on an [N,C,...] input is taken per channel even where
// numpy rules would not allow it (opset < 7 semantics that exporters keep
// producing).
func preluDef() *Def {
	slopeShape := func(x, s tensor.Shape) tensor.Shape {
		if len(s) == 1 && len(x) >= 2 && s[0] == x[1] && s[0] != x[len(x)-1] {
			ss := make(tensor.Shape, len(x)-1)
			for i := range ss {
				ss[i] = 1
			}
			ss[0] = s[0]
			return ss
		}
		return s
	}
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 2, 2, 1, 1); err != nil {
				return nil, err
			}
			for i := range in {
				if err := wantDType(n, in, i, tensor.Float32); err != nil {
					return nil, err
				}
			}
			s, err := broadcastShapes(n, in[0].Shape, slopeShape(in[0].Shape, in[1].Shape))
			if err != nil {
				return nil, err
			}
			if !s.Equal(in[0].Shape) {
				return nil, Errorf(n, "slope %v does not broadcast to input %v", in[1].Shape, in[0].Shape)
			}
			return one(tensor.Float32, s), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			p := newBPlan(in[0].Shape, slopeShape(in[0].Shape, in[1].Shape), out[0].Shape)
			return KernelFunc(func(pool *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 2); err != nil {
					return err
				}
				binRun(pool, p, opPRelu, out[0].F, in[0].F, in[1].F)
				return nil
			}), nil
		},
		FLOPs: numelFLOPs(1),
		Class: ClassElem,
	}
}

// variadicDef defines Sum, Mean, Max and Min over one or more broadcasting
// inputs.
func variadicDef(op binOp, mean bool) *Def {
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if len(in) == 0 {
				return nil, Errorf(n, "needs at least one input")
			}
			if err := arity(n, in, len(in), len(in), 1, 1); err != nil {
				return nil, err
			}
			shapes := make([]tensor.Shape, len(in))
			for i := range in {
				if mean {
					if err := wantDType(n, in, i, tensor.Float32); err != nil {
						return nil, err
					}
				} else if err := wantDType(n, in, i, tensor.Float32, tensor.Int64); err != nil {
					return nil, err
				}
				if in[i].DType != in[0].DType {
					return nil, Errorf(n, "input types differ: %v and %v", in[0].DType, in[i].DType)
				}
				shapes[i] = in[i].Shape
			}
			s, err := broadcastShapes(n, shapes...)
			if err != nil {
				return nil, err
			}
			return one(in[0].DType, s), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			os := out[0].Shape
			var plans []*bplan
			if len(in) == 1 {
				plans = append(plans, newBPlan(in[0].Shape, in[0].Shape, os))
			} else {
				plans = append(plans, newBPlan(in[0].Shape, in[1].Shape, os))
				for _, x := range in[2:] {
					plans = append(plans, newBPlan(os, x.Shape, os))
				}
			}
			scale := float32(1) / float32(len(in))
			return KernelFunc(func(pool *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, len(plans)); err != nil {
					return err
				}
				o := out[0]
				switch o.DType {
				case tensor.Float32:
					if len(in) == 1 {
						binRun(pool, plans[0], opFirst, o.F, in[0].F, in[0].F)
					} else {
						binRun(pool, plans[0], op, o.F, in[0].F, in[1].F)
						for k, x := range in[2:] {
							binRun(pool, plans[k+1], op, o.F, o.F, x.F)
						}
					}
					if mean {
						for i := range o.F {
							o.F[i] *= scale
						}
					}
				case tensor.Int64:
					if len(in) == 1 {
						binRun(pool, plans[0], opFirst, o.I, in[0].I, in[0].I)
					} else {
						binRun(pool, plans[0], op, o.I, in[0].I, in[1].I)
						for k, x := range in[2:] {
							binRun(pool, plans[k+1], op, o.I, o.I, x.I)
						}
					}
				}
				return nil
			}), nil
		},
		FLOPs: func(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
			return int64(max(len(in)-1, 1)) * int64(out[0].Shape.Numel())
		},
		Class: ClassElem,
	}
}

type cmpOp int

const (
	cmpEq cmpOp = iota
	cmpLt
	cmpGt
	cmpLe
	cmpGe
	cmpAnd
	cmpOr
	cmpXor
)

func cmpVal[T float32 | int64](op cmpOp, x, y T) bool {
	switch op {
	case cmpEq:
		return x == y
	case cmpLt:
		return x < y
	case cmpGt:
		return x > y
	case cmpLe:
		return x <= y
	case cmpGe:
		return x >= y
	}
	return false
}

func boolVal(op cmpOp, x, y bool) bool {
	switch op {
	case cmpEq:
		return x == y
	case cmpAnd:
		return x && y
	case cmpOr:
		return x || y
	case cmpXor:
		return x != y
	}
	return false
}

// compareDef defines comparison and logical operators (Bool output).
func compareDef(op cmpOp) *Def {
	logical := op == cmpAnd || op == cmpOr || op == cmpXor
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 2, 2, 1, 1); err != nil {
				return nil, err
			}
			for i := range in {
				var err error
				switch {
				case logical:
					err = wantDType(n, in, i, tensor.Bool)
				case op == cmpEq:
					err = wantDType(n, in, i, tensor.Float32, tensor.Int64, tensor.Bool)
				default:
					err = wantDType(n, in, i, tensor.Float32, tensor.Int64)
				}
				if err != nil {
					return nil, err
				}
			}
			if in[0].DType != in[1].DType {
				return nil, Errorf(n, "operand types differ: %v and %v", in[0].DType, in[1].DType)
			}
			s, err := broadcastShapes(n, in[0].Shape, in[1].Shape)
			if err != nil {
				return nil, err
			}
			return one(tensor.Bool, s), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			p := newBPlan(in[0].Shape, in[1].Shape, out[0].Shape)
			return KernelFunc(func(pool *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 2); err != nil {
					return err
				}
				a, b, d := in[0], in[1], out[0].B
				p.each(nil, func(o, cnt, oa, ob int) {
					for i := 0; i < cnt; i++ {
						ja, jb := oa+i*p.ia, ob+i*p.ib
						switch a.DType {
						case tensor.Float32:
							d[o+i] = cmpVal(op, a.F[ja], b.F[jb])
						case tensor.Int64:
							d[o+i] = cmpVal(op, a.I[ja], b.I[jb])
						case tensor.Bool:
							d[o+i] = boolVal(op, a.B[ja], b.B[jb])
						}
					}
				})
				return nil
			}), nil
		},
		FLOPs: numelFLOPs(1),
		Class: ClassElem,
	}
}

// whereDef defines Where(cond, X, Y) with three-way broadcasting.
func whereDef() *Def {
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 3, 3, 1, 1); err != nil {
				return nil, err
			}
			if err := wantDType(n, in, 0, tensor.Bool); err != nil {
				return nil, err
			}
			if in[1].DType != in[2].DType {
				return nil, Errorf(n, "X and Y types differ: %v and %v", in[1].DType, in[2].DType)
			}
			s, err := broadcastShapes(n, in[0].Shape, in[1].Shape, in[2].Shape)
			if err != nil {
				return nil, err
			}
			return one(in[1].DType, s), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			os := out[0].Shape
			st := [][]int{bstrides(in[0].Shape, os), bstrides(in[1].Shape, os), bstrides(in[2].Shape, os)}
			return KernelFunc(func(pool *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 3); err != nil {
					return err
				}
				c, x, y, o := in[0].B, in[1], in[2], out[0]
				forEachIndex(os, st, func(i int, offs []int) {
					src, off := y, offs[2]
					if c[offs[0]] {
						src, off = x, offs[1]
					}
					switch o.DType {
					case tensor.Float32:
						o.F[i] = src.F[off]
					case tensor.Int64:
						o.I[i] = src.I[off]
					case tensor.Bool:
						o.B[i] = src.B[off]
					}
				})
				return nil
			}), nil
		},
		FLOPs: zeroFLOPs,
		Class: ClassElem,
	}
}

// unaryOp describes an elementwise function of one input. mk builds the
// row function from the node's attributes; ints, when set, handles Int64.
type unaryOp struct {
	mk    func(n *graph.Node) func(d, s []float32)
	ints  func(d, s []int64)
	flops int64
}

func fmap(f func(float64) float64) func(n *graph.Node) func(d, s []float32) {
	return func(*graph.Node) func(d, s []float32) {
		return func(d, s []float32) {
			for i, v := range s {
				d[i] = float32(f(float64(v)))
			}
		}
	}
}

var unaryOps = map[string]unaryOp{
	"Relu": {mk: func(*graph.Node) func(d, s []float32) {
		return func(d, s []float32) {
			d = d[:len(s)]
			for i, v := range s {
				// branchless: clear the value when its sign bit is set
				u := math.Float32bits(v)
				d[i] = math.Float32frombits(u &^ uint32(int32(u)>>31))
			}
		}
	}, ints: func(d, s []int64) {
		for i, v := range s {
			d[i] = max(v, 0)
		}
	}, flops: 1},
	"LeakyRelu": {mk: func(n *graph.Node) func(d, s []float32) {
		a := n.Float("alpha", 0.01)
		return func(d, s []float32) {
			d = d[:len(s)]
			am1 := a - 1
			for i, v := range s {
				// branchless: scale by 1 + (alpha-1)*signbit
				neg := float32(math.Float32bits(v) >> 31)
				d[i] = v * (1 + am1*neg)
			}
		}
	}, flops: 1},
	"Sigmoid": {mk: func(*graph.Node) func(d, s []float32) {
		return func(d, s []float32) {
			d = d[:len(s)]
			for i, v := range s {
				d[i] = 1 / (1 + expf(-v))
			}
		}
	}, flops: 4},
	"HardSigmoid": {mk: func(n *graph.Node) func(d, s []float32) {
		a, b := n.Float("alpha", 0.2), n.Float("beta", 0.5)
		return func(d, s []float32) {
			d = d[:len(s)]
			for i, v := range s {
				d[i] = max(0, min(1, a*v+b))
			}
		}
	}, flops: 3},
	"HardSwish": {mk: func(*graph.Node) func(d, s []float32) {
		return func(d, s []float32) {
			d = d[:len(s)]
			for i, v := range s {
				d[i] = v * max(0, min(1, v*(1.0/6)+0.5))
			}
		}
	}, flops: 4},
	"Tanh":  {mk: fmap(math.Tanh), flops: 4},
	"Exp":   {mk: fmap(math.Exp), flops: 4},
	"Log":   {mk: fmap(math.Log), flops: 4},
	"Sqrt":  {mk: fmap(math.Sqrt), flops: 1},
	"Floor": {mk: fmap(math.Floor), ints: func(d, s []int64) { copy(d, s) }, flops: 1},
	"Ceil":  {mk: fmap(math.Ceil), ints: func(d, s []int64) { copy(d, s) }, flops: 1},
	"Round": {mk: fmap(math.RoundToEven), ints: func(d, s []int64) { copy(d, s) }, flops: 1},
	"Erf":   {mk: fmap(math.Erf), flops: 4},
	"Sin":   {mk: fmap(math.Sin), flops: 4},
	"Cos":   {mk: fmap(math.Cos), flops: 4},
	"Reciprocal": {mk: func(*graph.Node) func(d, s []float32) {
		return func(d, s []float32) {
			for i, v := range s {
				d[i] = 1 / v
			}
		}
	}, flops: 1},
	"Neg": {mk: func(*graph.Node) func(d, s []float32) {
		return func(d, s []float32) {
			for i, v := range s {
				d[i] = -v
			}
		}
	}, ints: func(d, s []int64) {
		for i, v := range s {
			d[i] = -v
		}
	}, flops: 1},
	"Abs": {mk: fmap(math.Abs), ints: func(d, s []int64) {
		for i, v := range s {
			if v < 0 {
				v = -v
			}
			d[i] = v
		}
	}, flops: 1},
	"Sign": {mk: func(*graph.Node) func(d, s []float32) {
		return func(d, s []float32) {
			for i, v := range s {
				switch {
				case v > 0:
					d[i] = 1
				case v < 0:
					d[i] = -1
				default:
					d[i] = v // 0 or NaN
				}
			}
		}
	}, ints: func(d, s []int64) {
		for i, v := range s {
			d[i] = int64(min(max(v, -1), 1))
		}
	}, flops: 1},
	"Elu": {mk: func(n *graph.Node) func(d, s []float32) {
		a := float64(n.Float("alpha", 1))
		return func(d, s []float32) {
			for i, v := range s {
				if v < 0 {
					v = float32(a * (math.Exp(float64(v)) - 1))
				}
				d[i] = v
			}
		}
	}, flops: 4},
	"Selu": {mk: func(n *graph.Node) func(d, s []float32) {
		a := float64(n.Float("alpha", 1.67326319217681884765625))
		g := n.Float("gamma", 1.05070102214813232421875)
		return func(d, s []float32) {
			for i, v := range s {
				if v <= 0 {
					v = float32(a * (math.Exp(float64(v)) - 1))
				}
				d[i] = g * v
			}
		}
	}, flops: 4},
	"Softplus": {mk: fmap(func(x float64) float64 {
		if x > 30 {
			return x
		}
		return math.Log1p(math.Exp(x))
	}), flops: 4},
	"Softsign": {mk: func(*graph.Node) func(d, s []float32) {
		return func(d, s []float32) {
			for i, v := range s {
				d[i] = v / (1 + float32(math.Abs(float64(v))))
			}
		}
	}, flops: 3},
	"Mish": {mk: fmap(func(x float64) float64 {
		sp := x
		if x <= 30 {
			sp = math.Log1p(math.Exp(x))
		}
		return x * math.Tanh(sp)
	}), flops: 8},
}

// unaryDef defines an elementwise operator of one input.
func unaryDef(name string, u unaryOp) *Def {
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 1, 1, 1, 1); err != nil {
				return nil, err
			}
			if u.ints != nil {
				if err := wantDType(n, in, 0, tensor.Float32, tensor.Int64); err != nil {
					return nil, err
				}
			} else if err := wantDType(n, in, 0, tensor.Float32); err != nil {
				return nil, err
			}
			return one(in[0].DType, in[0].Shape.Clone()), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			f := u.mk(n)
			return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 1); err != nil {
					return err
				}
				x, y := in[0], out[0]
				if x.DType == tensor.Int64 {
					u.ints(y.I, x.I)
					return nil
				}
				splitElems(p, len(x.F), func(lo, hi int) { f(y.F[lo:hi], x.F[lo:hi]) })
				return nil
			}), nil
		},
		FLOPs: numelFLOPs(u.flops),
		Class: ClassElem,
	}
}

// scalarOf reads a one-element tensor as float32.
func scalarOf(t *tensor.Tensor) (float32, bool) {
	if t == nil || t.Len() != 1 {
		return 0, false
	}
	switch t.DType {
	case tensor.Float32:
		return t.F[0], true
	case tensor.Int64:
		return float32(t.I[0]), true
	}
	return 0, false
}

// clipDef defines Clip: min/max attributes before opset 11, optional scalar
// inputs from 11 on. When min > max every value becomes max.
func clipDef() *Def {
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 1, 3, 1, 1); err != nil {
				return nil, err
			}
			if err := wantDType(n, in, 0, tensor.Float32, tensor.Int64); err != nil {
				return nil, err
			}
			for i := 1; i < len(in); i++ {
				if !in[i].Present {
					continue
				}
				if in[i].Shape.Numel() != 1 || len(in[i].Shape) > 1 {
					return nil, Errorf(n, "input %d (min/max) must be a scalar, has shape %v", i, in[i].Shape)
				}
				if in[i].DType != in[0].DType {
					return nil, Errorf(n, "input %d has type %v, want %v", i, in[i].DType, in[0].DType)
				}
			}
			return one(in[0].DType, in[0].Shape.Clone()), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			lo0, hi0 := float32(-math.MaxFloat32), float32(math.MaxFloat32)
			if opset < 11 {
				lo0, hi0 = n.Float("min", lo0), n.Float("max", hi0)
			}
			ilo, ihi := int64(math.MinInt64), int64(math.MaxInt64)
			return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 1); err != nil {
					return err
				}
				lo, hi := lo0, hi0
				ilo, ihi := ilo, ihi
				if len(in) > 1 && in[1] != nil && in[1].Len() == 1 {
					if in[1].DType == tensor.Int64 {
						ilo = in[1].I[0]
					}
					lo, _ = scalarOf(in[1])
				}
				if len(in) > 2 && in[2] != nil && in[2].Len() == 1 {
					if in[2].DType == tensor.Int64 {
						ihi = in[2].I[0]
					}
					hi, _ = scalarOf(in[2])
				}
				x, y := in[0], out[0]
				if x.DType == tensor.Int64 {
					for i, v := range x.I {
						y.I[i] = min(max(v, ilo), ihi)
					}
					return nil
				}
				splitElems(p, len(x.F), func(a, b int) {
					d, s := y.F[a:b], x.F[a:b]
					for i, v := range s {
						d[i] = min(max(v, lo), hi)
					}
				})
				return nil
			}), nil
		},
		FLOPs: numelFLOPs(2),
		Class: ClassElem,
	}
}

// castTensor converts t to dtype dt (allocating).
func castTensor(t *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	o := tensor.New(dt, t.Shape)
	castInto(o, t)
	return o
}

// castInto converts src into dst (same size) following ONNX Cast: floats
// truncate toward zero when converted to integers, non-zero is true.
func castInto(dst, src *tensor.Tensor) {
	switch src.DType {
	case tensor.Float32:
		switch dst.DType {
		case tensor.Float32:
			copy(dst.F, src.F)
		case tensor.Int64:
			for i, v := range src.F {
				dst.I[i] = f2i(v)
			}
		case tensor.Bool:
			for i, v := range src.F {
				dst.B[i] = v != 0
			}
		}
	case tensor.Int64:
		switch dst.DType {
		case tensor.Float32:
			for i, v := range src.I {
				dst.F[i] = float32(v)
			}
		case tensor.Int64:
			copy(dst.I, src.I)
		case tensor.Bool:
			for i, v := range src.I {
				dst.B[i] = v != 0
			}
		}
	case tensor.Bool:
		switch dst.DType {
		case tensor.Float32:
			for i, v := range src.B {
				if v {
					dst.F[i] = 1
				} else {
					dst.F[i] = 0
				}
			}
		case tensor.Int64:
			for i, v := range src.B {
				if v {
					dst.I[i] = 1
				} else {
					dst.I[i] = 0
				}
			}
		case tensor.Bool:
			copy(dst.B, src.B)
		}
	}
}

// f2i converts with saturation (Go's conversion of out-of-range floats is
// implementation-defined).
func f2i(v float32) int64 {
	switch {
	case v != v:
		return 0
	case v >= 9.2233715e18:
		return math.MaxInt64
	case v <= -9.2233715e18:
		return math.MinInt64
	}
	return int64(v)
}

// expf is a float32 exponential (Cephes' expf: range reduction by ln 2 and
// a degree-6 polynomial), accurate to about 2 ulp; about five times faster
// than math.Exp through float64. Overflow gives +Inf, underflow 0.
func expf(x float32) float32 {
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	if x < -87.33654 {
		if x != x {
			return x
		}
		return 0
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	fn := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - fn*c1 - fn*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	n := int32(fn)
	if n > 127 { // x in (88.37, 88.72]: 2^n overflows, scale in two steps
		return y * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	if n < -126 {
		return y * math.Float32frombits(uint32(n+64+127)<<23) * (1.0 / (1 << 64))
	}
	return y * math.Float32frombits(uint32(n+127)<<23)
}
