package ops

import (
	"math"
	"math/rand"
	"testing"

	"github.com/iop-edge/iop/internal/tensor"
)

func TestBinaryBroadcast(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	shapes := [][2]tensor.Shape{
		{{2, 3, 4, 5}, {2, 3, 4, 5}},
		{{2, 3, 4, 5}, {1, 3, 1, 1}},
		{{2, 3, 4, 5}, {3, 1, 1}},
		{{1, 3, 1, 1}, {2, 3, 4, 5}},
		{{2, 3, 4, 5}, {5}},
		{{2, 3, 4, 5}, {}},
		{{}, {2, 3, 4, 5}},
		{{2, 1, 4, 1}, {1, 3, 1, 5}},
		{{4, 1}, {3}},
		{{2, 3, 4, 5}, {2, 1, 4, 1}},
		{{1, 64, 56, 56}, {1, 64, 56, 56}}, // large: parallel path
		{{1, 64, 56, 56}, {1, 64, 1, 1}},
		{{0, 3}, {1, 3}},
	}
	ops := map[string]func(x, y float64) float64{
		"Add": func(x, y float64) float64 { return x + y },
		"Sub": func(x, y float64) float64 { return x - y },
		"Mul": func(x, y float64) float64 { return x * y },
		"Div": func(x, y float64) float64 { return x / y },
		"Pow": func(x, y float64) float64 { return math.Pow(math.Abs(x), y) },
	}
	for name, f := range ops {
		for _, s := range shapes {
			a, b := randT(r, s[0]...), randT(r, s[1]...)
			if name == "Pow" {
				for i := range a.F {
					a.F[i] = float32(math.Abs(float64(a.F[i])))
				}
			}
			got := run1(t, node(name, 2, 1), 14, V(a), V(b))
			near(t, name+" "+s[0].String()+" "+s[1].String(), got, refBroadcast(a, b, f))
		}
	}
	// Min/Max/Sum/Mean variadic with broadcasting
	a, b, c := randT(r, 2, 3, 4), randT(r, 3, 1), randT(r, 4)
	sum := run1(t, node("Sum", 3, 1), 13, V(a), V(b), V(c))
	want := refBroadcast(refBroadcast(a, b, func(x, y float64) float64 { return x + y }), c, func(x, y float64) float64 { return x + y })
	near(t, "Sum", sum, want)
	mean := run1(t, node("Mean", 3, 1), 13, V(a), V(b), V(c))
	for i := range want.F {
		want.F[i] /= 3
	}
	near(t, "Mean", mean, want)
	mx := run1(t, node("Max", 2, 1), 13, V(a), V(b))
	near(t, "Max", mx, refBroadcast(a, b, math.Max))
	one := run1(t, node("Sum", 1, 1), 13, V(a))
	near(t, "Sum1", one, a)
}

func TestIntArithmetic(t *testing.T) {
	a := i64(tensor.Shape{4}, 7, -7, 7, -7)
	b := i64(tensor.Shape{4}, 2, 2, -2, -2)
	div := run1(t, node("Div", 2, 1), 14, C(a), C(b))
	if err := tensor.AllClose(div, i64(tensor.Shape{4}, 3, -3, -3, 3), 0, 0); err != nil {
		t.Fatalf("int div truncates toward zero: %v", err)
	}
	mod := run1(t, node("Mod", 2, 1), 14, C(a), C(b))
	if err := tensor.AllClose(mod, i64(tensor.Shape{4}, 1, 1, -1, -1), 0, 0); err != nil {
		t.Fatalf("int mod: %v", err)
	}
	fm := node("Mod", 2, 1)
	fm.SetInt("fmod", 1)
	if got := run1(t, fm, 14, C(a), C(b)); got.I[1] != -1 || got.I[2] != 1 {
		t.Fatalf("fmod: %v", got.I)
	}
	if got := run1(t, fm, 14, V(f32(tensor.Shape{2}, -7.5, 7.5)), V(f32(tensor.Shape{2}, 2, -2))); got.F[0] != -1.5 || got.F[1] != 1.5 {
		t.Fatalf("float fmod: %v", got.F)
	}
	// division by zero is defined (0), never a panic
	z := run1(t, node("Div", 2, 1), 14, C(a), C(i64(tensor.Shape{}, 0)))
	for _, v := range z.I {
		if v != 0 {
			t.Fatalf("int div by zero gave %d", v)
		}
	}
	mul := run1(t, node("Mul", 2, 1), 14, C(i64(tensor.Shape{2}, 3, 4)), C(i64(tensor.Shape{}, 5)))
	if mul.I[0] != 15 || mul.I[1] != 20 {
		t.Fatalf("int mul %v", mul.I)
	}
	mustFail(t, node("Add", 2, 1), 14, "types differ", V(randT(rand.New(rand.NewSource(1)), 2)), C(ints(1, 2)))
	mustFail(t, node("Add", 2, 1), 14, "not broadcastable", V(tensor.New(tensor.Float32, tensor.Shape{2, 3})), V(tensor.New(tensor.Float32, tensor.Shape{2})))
	mustFail(t, node("Add", 2, 1), 14, "type", V(&tensor.Tensor{DType: tensor.Bool, Shape: tensor.Shape{1}, B: []bool{true}}), V(&tensor.Tensor{DType: tensor.Bool, Shape: tensor.Shape{1}, B: []bool{true}}))
	mustFail(t, node("Add", 1, 1), 14, "inputs", V(randT(rand.New(rand.NewSource(1)), 2)))
	mustFail(t, node("Sum", 2, 1), 14, "broadcastable", V(tensor.New(tensor.Float32, tensor.Shape{2, 3})), V(tensor.New(tensor.Float32, tensor.Shape{4})))
}

func TestCompareWhere(t *testing.T) {
	a := i64(tensor.Shape{3}, 1, 2, 3)
	eq := run1(t, node("Equal", 2, 1), 13, C(a), C(i64(tensor.Shape{}, 2)))
	if eq.B[0] || !eq.B[1] || eq.B[2] {
		t.Fatalf("Equal %v", eq.B)
	}
	lt := run1(t, node("Less", 2, 1), 13, C(a), C(i64(tensor.Shape{}, 2)))
	if !lt.B[0] || lt.B[1] || lt.B[2] {
		t.Fatalf("Less %v", lt.B)
	}
	x := f32(tensor.Shape{2, 3}, 1, 2, 3, 4, 5, 6)
	w := run1(t, node("Where", 3, 1), 13, V(eq), V(x), V(scalarF(-1)))
	if err := tensor.AllClose(w, f32(tensor.Shape{2, 3}, -1, 2, -1, -1, 5, -1), 0, 0); err != nil {
		t.Fatal(err)
	}
	not := run1(t, node("Not", 1, 1), 13, V(eq))
	if !not.B[0] || not.B[1] {
		t.Fatalf("Not %v", not.B)
	}
	mustFail(t, node("Where", 3, 1), 13, "bool", V(x), V(x), V(x))
}

func TestActivations(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	x := randT(r, 1, 8, 70, 70) // parallel path
	for i := range x.F {
		x.F[i] *= 8
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for _, tc := range []struct {
		op    string
		attrs map[string]float32
		f     func(float64) float64
	}{
		{"Relu", nil, func(v float64) float64 { return math.Max(v, 0) }},
		{"LeakyRelu", nil, func(v float64) float64 {
			if v < 0 {
				return 0.01 * v
			}
			return v
		}},
		{"LeakyRelu", map[string]float32{"alpha": 0.2}, func(v float64) float64 {
			if v < 0 {
				return 0.2 * v
			}
			return v
		}},
		{"Sigmoid", nil, sig},
		{"HardSigmoid", nil, func(v float64) float64 { return math.Max(0, math.Min(1, 0.2*v+0.5)) }},
		{"HardSigmoid", map[string]float32{"alpha": 0.5, "beta": 0.6}, func(v float64) float64 { return math.Max(0, math.Min(1, 0.5*v+0.6)) }},
		{"HardSwish", nil, func(v float64) float64 { return v * math.Max(0, math.Min(1, v/6+0.5)) }},
		{"Tanh", nil, math.Tanh},
		{"Exp", nil, math.Exp},
		{"Neg", nil, func(v float64) float64 { return -v }},
		{"Abs", nil, math.Abs},
		{"Floor", nil, math.Floor},
		{"Ceil", nil, math.Ceil},
		{"Elu", nil, func(v float64) float64 {
			if v < 0 {
				return math.Exp(v) - 1
			}
			return v
		}},
	} {
		n := node(tc.op, 1, 1)
		for k, v := range tc.attrs {
			n.SetFloat(k, v)
		}
		got := run1(t, n, 14, V(x))
		want := tensor.New(tensor.Float32, x.Shape)
		for i, v := range x.F {
			want.F[i] = float32(tc.f(float64(v)))
		}
		near(t, tc.op, got, want)
	}
	mustFail(t, node("Sigmoid", 1, 1), 14, "type", V(ints(1)))
	neg := run1(t, node("Neg", 1, 1), 14, C(ints(1, -2)))
	if neg.I[0] != -1 || neg.I[1] != 2 {
		t.Fatalf("int Neg %v", neg.I)
	}
}

func TestClip(t *testing.T) {
	x := f32(tensor.Shape{5}, -3, -1, 0, 1, 3)
	check := func(name string, got *tensor.Tensor, want ...float32) {
		t.Helper()
		if err := tensor.AllClose(got, f32(tensor.Shape{5}, want...), 0, 0); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// opset 6: attributes
	n := node("Clip", 1, 1)
	n.SetFloat("min", -2)
	n.SetFloat("max", 2)
	check("attrs", run1(t, n, 6, V(x)), -2, -1, 0, 1, 2)
	check("attr defaults", run1(t, node("Clip", 1, 1), 6, V(x)), -3, -1, 0, 1, 3)
	// opset 13: inputs, constant or not, optional
	check("inputs", run1(t, node("Clip", 3, 1), 13, V(x), C(scalarF(-2)), V(scalarF(2))), -2, -1, 0, 1, 2)
	check("default min", run1(t, node("Clip", 3, 1), 13, V(x), none, C(scalarF(0.5))), -3, -1, 0, 0.5, 0.5)
	check("default max", run1(t, node("Clip", 2, 1), 13, V(x), C(scalarF(0))), 0, 0, 0, 1, 3)
	check("no bounds", run1(t, node("Clip", 1, 1), 13, V(x)), -3, -1, 0, 1, 3)
	check("min>max", run1(t, node("Clip", 3, 1), 13, V(x), C(scalarF(2)), C(scalarF(1))), 1, 1, 1, 1, 1)
	mustFail(t, node("Clip", 3, 1), 13, "scalar", V(x), C(f32(tensor.Shape{2}, 0, 1)), none)
	ic := run1(t, node("Clip", 3, 1), 13, C(ints(-5, 0, 5)), C(i64(tensor.Shape{}, -1)), C(i64(tensor.Shape{}, 1)))
	if ic.I[0] != -1 || ic.I[2] != 1 {
		t.Fatalf("int clip %v", ic.I)
	}
}

func TestPRelu(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	x := randT(r, 2, 3, 4, 5)
	for _, s := range []tensor.Shape{{3, 1, 1}, {1, 3, 1, 1}, {5}, {1}, {2, 3, 4, 5}, {3}} {
		slope := randT(r, s...)
		got := run1(t, node("PRelu", 2, 1), 9, V(x), C(slope))
		ss := s
		if len(s) == 1 && s[0] == 3 {
			ss = tensor.Shape{3, 1, 1} // per-channel legacy form
		}
		want := refBroadcast(x, slope.Reshaped(ss), func(v, a float64) float64 {
			if v < 0 {
				return a * v
			}
			return v
		})
		near(t, "prelu "+s.String(), got, want)
	}
	mustFail(t, node("PRelu", 2, 1), 9, "", V(x), C(randT(r, 4)))
	mustFail(t, node("PRelu", 2, 1), 9, "does not broadcast", V(randT(r, 3)), C(randT(r, 2, 3)))
}

func TestBatchNorm(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	x := randT(r, 2, 4, 3, 3)
	sc, b, m, v := randT(r, 4), randT(r, 4), randT(r, 4), randT(r, 4)
	for i := range v.F {
		v.F[i] = v.F[i]*v.F[i] + 0.1
	}
	want := tensor.New(tensor.Float32, x.Shape)
	for i := range x.F {
		c := (i / 9) % 4
		want.F[i] = float32(float64(sc.F[c])*(float64(x.F[i])-float64(m.F[c]))/math.Sqrt(float64(v.F[c])+1e-3) + float64(b.F[c]))
	}
	for _, opset := range []int64{7, 9, 14, 15} {
		n := node("BatchNormalization", 5, 1)
		n.SetFloat("epsilon", 1e-3)
		near(t, "bn const", run1(t, n, opset, V(x), C(sc), C(b), C(m), C(v)), want)
		near(t, "bn runtime", run1(t, n, opset, V(x), V(sc), V(b), V(m), V(v)), want)
	}
	mustFail(t, node("BatchNormalization", 5, 3), 14, "training", V(x), C(sc), C(b), C(m), C(v))
	tm := node("BatchNormalization", 5, 1)
	tm.SetInt("training_mode", 1)
	mustFail(t, tm, 14, "training_mode", V(x), C(sc), C(b), C(m), C(v))
	mustFail(t, node("BatchNormalization", 5, 1), 14, "one value per channel", V(x), C(randT(r, 3)), C(b), C(m), C(v))
	sp := node("BatchNormalization", 5, 1)
	sp.SetInt("spatial", 0)
	mustFail(t, sp, 7, "spatial", V(x), C(sc), C(b), C(m), C(v))
}

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-87.3); x < 88.7; x += 0.0137 {
		got, want := float64(expf(x)), math.Exp(float64(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 4e-7 {
		t.Fatalf("expf max relative error %g", worst)
	}
	if !math.IsInf(float64(expf(100)), 1) || expf(-100) != 0 || expf(0) != 1 {
		t.Fatalf("expf limits: %g %g %g", expf(100), expf(-100), expf(0))
	}
	if v := expf(float32(math.NaN())); v == v {
		t.Fatalf("expf(NaN) = %g", v)
	}
}
