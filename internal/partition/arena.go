package partition

import (
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/tensor"
)

// Arena is a device program's static activation memory plan: the float32
// tensors the program computes or allocates share a fixed set of buffers,
// a buffer being reused once every name that reads it (the tensor and its
// views) has been freed. A Runner allocates the buffers once, so serving a
// request allocates almost nothing (only graph outputs and the regions in
// flight), which keeps the garbage collector and its pauses out of the
// request path; the cost model plans the same arena to predict memory.
type Arena struct {
	// Buffer maps a local tensor to its buffer.
	Buffer map[string]int
	// Sizes are the buffers' lengths in floats.
	Sizes []int
}

// Bytes is the arena's memory.
func (a *Arena) Bytes() int64 {
	var b int64
	for _, n := range a.Sizes {
		b += int64(n) * 4
	}
	return b
}

// PlanArena plans p's arena. Graph outputs (and the tensors they are views
// of) are not in it: they leave with the response. Buffers are assigned
// best fit; when no free buffer is large enough the largest free one grows.
func PlanArena(p *Program) *Arena {
	a := &Arena{Buffer: map[string]int{}}
	viewOf := map[string]string{}
	for _, s := range p.Steps {
		if s.Kind == Compute && isViewOp(s.Node.Op) && len(s.Node.Inputs) > 0 && len(s.Node.Outputs) > 0 {
			viewOf[s.Node.Outputs[0]] = s.Node.Inputs[0]
		}
	}
	pinned := map[string]bool{}
	for _, o := range p.Outputs {
		for n := o.Local; n != ""; n = viewOf[n] {
			if pinned[n] {
				break
			}
			pinned[n] = true
		}
	}
	root := map[string]string{} // arena tensor or view → arena tensor
	refs := map[string]int{}    // live names per arena tensor
	var free []int
	place := func(name string, numel int) {
		if pinned[name] || numel <= 0 {
			return
		}
		if _, done := a.Buffer[name]; done {
			return
		}
		best := -1
		for j, b := range free {
			if a.Sizes[b] >= numel && (best < 0 || a.Sizes[b] < a.Sizes[free[best]]) {
				best = j
			}
		}
		if best < 0 && len(free) > 0 {
			best = 0
			for j, b := range free {
				if a.Sizes[b] > a.Sizes[free[best]] {
					best = j
				}
			}
			a.Sizes[free[best]] = numel
		}
		if best >= 0 {
			a.Buffer[name] = free[best]
			free = append(free[:best], free[best+1:]...)
		} else {
			a.Buffer[name] = len(a.Sizes)
			a.Sizes = append(a.Sizes, numel)
		}
		root[name] = name
		refs[name] = 1
	}
	isF32 := func(name string) bool { return p.Values[name].DType == tensor.Float32 }
	for _, s := range p.Steps {
		switch s.Kind {
		case Compute:
			if isViewOp(s.Node.Op) {
				if r, ok := root[s.Node.Inputs[0]]; ok && len(s.Node.Outputs) > 0 {
					root[s.Node.Outputs[0]] = r
					refs[r]++
				}
				continue
			}
			for _, o := range s.Node.Outputs {
				if o != "" && isF32(o) {
					place(o, p.Values[o].Shape.Numel())
				}
			}
		case Alloc:
			if isF32(s.Dst) {
				place(s.Dst, s.Shape.Numel())
			}
		case Free:
			for _, n := range s.Names {
				r, ok := root[n]
				if !ok {
					continue
				}
				delete(root, n)
				if refs[r]--; refs[r] == 0 {
					free = append(free, a.Buffer[r])
				}
			}
		}
	}
	return a
}

func isViewOp(op string) bool {
	d, ok := ops.Lookup(op)
	return ok && d.View
}
