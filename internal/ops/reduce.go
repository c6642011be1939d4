package ops

import (
	"math"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

func init() {
	Register("ReduceMean", reduceDef(redMean, 18))
	Register("ReduceSum", reduceDef(redSum, 13))
	Register("ReduceMax", reduceDef(redMax, 18))
	Register("ReduceMin", reduceDef(redMin, 18))
	Register("ReduceProd", reduceDef(redProd, 18))
	Register("ReduceSumSquare", reduceDef(redSumSquare, 18))
	Register("ReduceL2", reduceDef(redL2, 18))
	Register("Softmax", softmaxDef(false))
	Register("LogSoftmax", softmaxDef(true))
}

type redKind int

const (
	redMean redKind = iota
	redSum
	redMax
	redMin
	redProd
	redSumSquare
	redL2
)

// reduceAxes resolves the reduced axes (sorted flags per dimension); noop
// reports noop_with_empty_axes with no axes (the output is the input).
func reduceAxes(n *graph.Node, opset, inputFrom int64, in []Input) (red []bool, noop bool, err error) {
	r := len(in[0].Shape)
	axes, ok, err := axesArg(n, opset, inputFrom, in, 1)
	if err != nil {
		return nil, false, err
	}
	red = make([]bool, r)
	if !ok || len(axes) == 0 {
		if opset >= inputFrom && n.Int("noop_with_empty_axes", 0) != 0 {
			return red, true, nil
		}
		for i := range red {
			red[i] = true
		}
		return red, false, nil
	}
	ax, err := normAxes(n, axes, r)
	if err != nil {
		return nil, false, err
	}
	for _, a := range ax {
		red[a] = true
	}
	return red, false, nil
}

func reduceDef(kind redKind, inputFrom int64) *Def {
	outShape := func(x tensor.Shape, red []bool, keep bool) tensor.Shape {
		out := tensor.Shape{}
		for i, d := range x {
			switch {
			case !red[i]:
				out = append(out, d)
			case keep:
				out = append(out, 1)
			}
		}
		return out
	}
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 1, 2, 1, 1); err != nil {
				return nil, err
			}
			dts := []tensor.DType{tensor.Float32}
			if kind == redSum || kind == redMax || kind == redMin || kind == redProd {
				dts = append(dts, tensor.Int64)
			}
			if err := wantDType(n, in, 0, dts...); err != nil {
				return nil, err
			}
			red, noop, err := reduceAxes(n, opset, inputFrom, in)
			if err != nil {
				return nil, err
			}
			x := in[0].Shape
			if noop {
				return one(in[0].DType, x.Clone()), nil
			}
			for i, d := range x {
				if red[i] && d == 0 && (kind == redMax || kind == redMin) {
					return nil, Errorf(n, "cannot reduce empty axis %d", i)
				}
			}
			return one(in[0].DType, outShape(x, red, n.Int("keepdims", 1) != 0)), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			red, noop, err := reduceAxes(n, opset, inputFrom, in)
			if err != nil {
				return nil, err
			}
			x := in[0].Shape
			count := 1
			// output strides aligned to the input (0 along reduced axes)
			keep := outShape(x, red, true)
			ks := keep.Strides()
			ost := make([]int, len(x))
			for i := range x {
				if red[i] {
					count *= x[i]
				} else {
					ost[i] = ks[i]
				}
			}
			// one contiguous block of reduced axes: outer × red × inner
			first, last := -1, -1
			for i := range red {
				if red[i] && x[i] != 1 {
					if first < 0 {
						first = i
					}
					last = i
				}
			}
			block := first >= 0
			for i := first + 1; block && i < last; i++ {
				if !red[i] && x[i] != 1 {
					block = false
				}
			}
			var outer, inner int
			if block {
				outer, inner = shapeProd(x, 0, first), shapeProd(x, last+1, len(x))
			} else if first < 0 { // nothing to reduce (all reduced dims are 1)
				block, outer, inner, count = true, x.Numel(), 1, 1
			}
			xsr := x.Strides()
			return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 1); err != nil {
					return err
				}
				if noop {
					copyTensor(out[0], in[0])
					return nil
				}
				if in[0].DType == tensor.Int64 {
					reduceGeneric(kind, x, [][]int{ost, xsr}, out[0].I, in[0].I)
					return nil
				}
				if !block {
					reduceGeneric(kind, x, [][]int{ost, xsr}, out[0].F, in[0].F)
					finishReduce(kind, out[0].F, count)
					return nil
				}
				src, dst := in[0].F, out[0].F
				splitItems(p, outer, count*inner, func(lo, hi int) {
					for o := lo; o < hi; o++ {
						reduceBlock(kind, dst[o*inner:(o+1)*inner], src[o*count*inner:(o+1)*count*inner], count, inner)
					}
				})
				finishReduce(kind, dst, count)
				return nil
			}), nil
		},
		FLOPs: func(n *graph.Node, in []Input, out []graph.ValueInfo) int64 { return int64(in[0].Shape.Numel()) },
		Class: ClassElem,
	}
}

func redInit[T number](kind redKind) T {
	switch kind {
	case redProd:
		return 1
	case redMax:
		var z T
		switch any(z).(type) {
		case float32:
			return T(float32(math.Inf(-1)))
		case int64:
			v := int64(math.MinInt64)
			return T(v)
		}
	case redMin:
		var z T
		switch any(z).(type) {
		case float32:
			return T(float32(math.Inf(1)))
		case int64:
			v := int64(math.MaxInt64)
			return T(v)
		}
	}
	return 0
}

func redStep[T number](kind redKind, acc, v T) T {
	switch kind {
	case redMax:
		return max(acc, v)
	case redMin:
		return min(acc, v)
	case redProd:
		return acc * v
	case redSumSquare, redL2:
		return acc + v*v
	}
	return acc + v
}

// reduceBlock reduces src [count, inner] over count into dst [inner].
func reduceBlock(kind redKind, dst, src []float32, count, inner int) {
	if inner == 1 {
		acc := redInit[float32](kind)
		if kind == redSum || kind == redMean {
			for _, v := range src {
				acc += v
			}
		} else {
			for _, v := range src {
				acc = redStep(kind, acc, v)
			}
		}
		dst[0] = acc
		return
	}
	init := redInit[float32](kind)
	for i := range dst {
		dst[i] = init
	}
	for c := 0; c < count; c++ {
		row := src[c*inner : (c+1)*inner]
		if kind == redSum || kind == redMean {
			for i, v := range row {
				dst[i] += v
			}
		} else {
			for i, v := range row {
				dst[i] = redStep(kind, dst[i], v)
			}
		}
	}
}

// reduceGeneric reduces over arbitrary axes by walking every input element.
func reduceGeneric[T number](kind redKind, x tensor.Shape, st [][]int, dst, src []T) {
	init := redInit[T](kind)
	for i := range dst {
		dst[i] = init
	}
	forEachIndex(x, st, func(_ int, offs []int) {
		dst[offs[0]] = redStep(kind, dst[offs[0]], src[offs[1]])
	})
}

func finishReduce(kind redKind, dst []float32, count int) {
	switch kind {
	case redMean:
		inv := 1 / float32(count)
		if count == 0 {
			inv = float32(math.NaN())
		}
		for i := range dst {
			dst[i] *= inv
		}
	case redL2:
		for i, v := range dst {
			dst[i] = float32(math.Sqrt(float64(v)))
		}
	}
}

// softmaxDef defines Softmax/LogSoftmax. Before opset 13 the input is
// flattened to 2-D at axis (default 1) and normalized over the whole second
// dimension; from 13 on it is normalized along the single axis (default -1).
func softmaxDef(logarithm bool) *Def {
	geom := func(n *graph.Node, opset int64, x tensor.Shape) (outer, cnt, inner int, err error) {
		r := len(x)
		if opset < 13 {
			axis := int(n.Int("axis", 1))
			if r == 0 {
				return 1, 1, 1, nil
			}
			if axis < -r || axis >= r {
				return 0, 0, 0, Errorf(n, "axis %d out of range for rank %d", axis, r)
			}
			if axis < 0 {
				axis += r
			}
			return shapeProd(x, 0, axis), shapeProd(x, axis, r), 1, nil
		}
		if r == 0 {
			return 1, 1, 1, nil
		}
		axis, err := normAxis(n, int(n.Int("axis", -1)), r)
		if err != nil {
			return 0, 0, 0, err
		}
		return shapeProd(x, 0, axis), x[axis], shapeProd(x, axis+1, r), nil
	}
	return &Def{
		Infer: func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
			if err := arity(n, in, 1, 1, 1, 1); err != nil {
				return nil, err
			}
			if err := wantDType(n, in, 0, tensor.Float32); err != nil {
				return nil, err
			}
			if _, _, _, err := geom(n, opset, in[0].Shape); err != nil {
				return nil, err
			}
			return one(tensor.Float32, in[0].Shape.Clone()), nil
		},
		Prepare: func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
			outer, cnt, inner, err := geom(n, opset, in[0].Shape)
			if err != nil {
				return nil, err
			}
			return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
				if err := checkOuts(n, in, out, 1); err != nil {
					return err
				}
				src, dst := in[0].F, out[0].F
				splitItems(p, outer*inner, cnt*8, func(lo, hi int) {
					for it := lo; it < hi; it++ {
						o, i := it/inner, it%inner
						base := o*cnt*inner + i
						m := float32(math.Inf(-1))
						for c := 0; c < cnt; c++ {
							m = max(m, src[base+c*inner])
						}
						var s float64
						for c := 0; c < cnt; c++ {
							e := math.Exp(float64(src[base+c*inner] - m))
							if !logarithm {
								dst[base+c*inner] = float32(e)
							}
							s += e
						}
						if logarithm {
							ls := float32(math.Log(s))
							for c := 0; c < cnt; c++ {
								dst[base+c*inner] = src[base+c*inner] - m - ls
							}
						} else {
							inv := float32(1 / s)
							for c := 0; c < cnt; c++ {
								dst[base+c*inner] *= inv
							}
						}
					}
				})
				return nil
			}), nil
		},
		FLOPs: numelFLOPs(5),
		Class: ClassElem,
	}
}
