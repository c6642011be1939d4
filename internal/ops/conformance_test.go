package ops_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/tensor"
)

// conformanceDir is the vendored copy of the ONNX backend-test cases.
const conformanceDir = "../../testdata/onnx-conformance"

// runGraph interprets g node by node through the ops registry. Integer and
// boolean graph inputs are treated as constants (as a loader folding shape
// subgraphs would see them); float inputs are runtime values.
func runGraph(g *graph.Graph, feeds []*tensor.Tensor, pool *kernels.Pool) (map[string]*tensor.Tensor, error) {
	vals := map[string]*tensor.Tensor{}
	consts := map[string]bool{}
	for k, v := range g.Constants {
		vals[k], consts[k] = v, true
	}
	if len(feeds) != len(g.Inputs) {
		return nil, fmt.Errorf("%d feeds for %d inputs", len(feeds), len(g.Inputs))
	}
	for i, in := range g.Inputs {
		vals[in.Name] = feeds[i]
		consts[in.Name] = feeds[i].DType != tensor.Float32
	}
	for _, n := range g.Nodes {
		d, ok := ops.Lookup(n.Op)
		if !ok {
			return nil, fmt.Errorf("unsupported operator %s", n.Op)
		}
		ins := make([]ops.Input, len(n.Inputs))
		args := make([]*tensor.Tensor, len(n.Inputs))
		allConst := true
		for i, name := range n.Inputs {
			if name == "" {
				continue
			}
			v, ok := vals[name]
			if !ok {
				return nil, fmt.Errorf("value %q undefined", name)
			}
			ins[i] = ops.Input{ValueInfo: graph.ValueInfo{Name: name, DType: v.DType, Shape: v.Shape}, Present: true}
			if consts[name] {
				ins[i].Const = v
			} else {
				allConst = false
			}
			args[i] = v
		}
		outs, err := d.Infer(n, g.Opset, ins)
		if err != nil {
			return nil, err
		}
		k, err := d.Prepare(n, g.Opset, ins, outs)
		if err != nil {
			return nil, err
		}
		res := make([]*tensor.Tensor, len(outs))
		for i, o := range outs {
			res[i] = tensor.New(o.DType, o.Shape)
		}
		if err := k.Run(pool, args, res); err != nil {
			return nil, err
		}
		for i, name := range n.Outputs {
			if name != "" && i < len(res) {
				vals[name] = res[i]
				consts[name] = allConst
			}
		}
	}
	return vals, nil
}

// unsupportedCases may fail, but only with an error (never a panic or a
// wrong answer).
var unsupportedCases = map[string]bool{}

func TestConformance(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(conformanceDir, "*", "test_*"))
	if len(dirs) == 0 {
		t.Fatal("no conformance cases at " + conformanceDir)
	}
	sort.Strings(dirs)
	pool := kernels.NewPool(2)
	for _, dir := range dirs {
		name := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			g, err := onnx.LoadFile(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Skipf("load: %v", err)
			}
			sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
			for _, set := range sets {
				var feeds []*tensor.Tensor
				for i := range g.Inputs {
					tt, _, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
					if err != nil {
						t.Fatalf("input %d: %v", i, err)
					}
					feeds = append(feeds, tt)
				}
				vals, err := runGraph(g, feeds, pool)
				if err != nil {
					if unsupportedCases[filepath.Base(dir)] {
						t.Logf("unsupported (ok): %v", err)
						return
					}
					t.Fatal(err)
				}
				for i, o := range g.Outputs {
					want, _, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
					if err != nil {
						if os.IsNotExist(err) || strings.Contains(err.Error(), "no such file") {
							continue
						}
						t.Fatalf("output %d: %v", i, err)
					}
					got := vals[o.Name]
					if got == nil {
						t.Fatalf("output %q not computed", o.Name)
					}
					if err := closeEnough(got, want, 1e-3, 1e-5); err != nil {
						t.Errorf("output %d (%s): %v", i, o.Name, err)
					}
				}
			}
		})
	}
}

// closeEnough is tensor.AllClose, except that exactly equal values
// (including infinities) always match.
func closeEnough(got, want *tensor.Tensor, rtol, atol float64) error {
	if got.DType == tensor.Float32 && want.DType == tensor.Float32 && len(got.F) == len(want.F) {
		g := got.Clone()
		for i := range g.F {
			if g.F[i] == want.F[i] {
				g.F[i], want.F[i] = 0, 0
			}
		}
		w := want
		return tensor.AllClose(g, w, rtol, atol)
	}
	return tensor.AllClose(got, want, rtol, atol)
}
