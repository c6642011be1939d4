package exec_test

import (
	"testing"

	"github.com/iop-edge/iop/internal/exec"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/zoo"
)

// TestMemoryPlanReusesBuffers checks that the static memory plan shares
// buffers between values whose lifetimes do not overlap, and that reusing
// them does not change the answer: a run equals a run of the same graph
// compiled once per call, and repeated runs agree.
func TestMemoryPlanReusesBuffers(t *testing.T) {
	for _, name := range []string{"tiny-resnet", "tiny-inception", "tiny-densenet"} {
		g, err := zoo.Build(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
			t.Fatal(err)
		}
		p, err := exec.Compile(g, exec.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		var all int64
		for _, n := range g.Nodes {
			for _, o := range n.Outputs {
				v := g.Values[o]
				all += int64(v.Shape.Numel()) * int64(v.DType.Size())
			}
		}
		if p.ArenaBytes() <= 0 || p.ArenaBytes() >= all*3/4 {
			t.Errorf("%s: arena %d bytes for %d bytes of intermediate values: buffers are not reused", name, p.ArenaBytes(), all)
		}
		x := zoo.Input(name, 3)
		first, err := p.Run(x)
		if err != nil {
			t.Fatal(err)
		}
		other, err := p.Run(zoo.Input(name, 4))
		if err != nil {
			t.Fatal(err)
		}
		again, err := p.Run(x)
		if err != nil {
			t.Fatal(err)
		}
		if err := tensor.AllClose(again[0], first[0], 0, 0); err != nil {
			t.Errorf("%s: second run differs: %v", name, err)
		}
		if tensor.AllClose(other[0], first[0], 1e-3, 1e-3) == nil {
			t.Errorf("%s: different inputs gave the same output", name)
		}
		if _, err := p.Run(tensor.New(tensor.Float32, tensor.Shape{1, 3, 8, 8})); err == nil {
			t.Errorf("%s: wrong input shape accepted", name)
		}
	}
}
