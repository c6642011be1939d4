package planner

import (
	"fmt"

	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/plan"
)

// Validate checks a plan (typically loaded from a file) against the problem
// it is to run: the same model (by hash), a cluster whose devices it names,
// and layouts whose slices cover every tensor they split. It then compiles
// the plan (shapes only) to catch anything the operators' rules reject.
func Validate(p *plan.Plan, pr *Problem) error {
	g := pr.Graph
	if p.Model.Hash != pr.Hash() {
		return fmt.Errorf("plan was made for model %q (%s), not for %q (%s)", p.Model.Name, short(p.Model.Hash), pr.ModelName, short(pr.Hash()))
	}
	n := p.Cluster.N()
	if len(p.Nodes) != len(g.Nodes) {
		return fmt.Errorf("plan has %d operators, the model has %d", len(p.Nodes), len(g.Nodes))
	}
	check := func(what string, l plan.Layout, shapeOf string) error {
		shape := g.Values[shapeOf].Shape
		if _, err := partition.Regions(l, shape, n); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	for i, in := range g.Inputs {
		if i >= len(p.Inputs) {
			return fmt.Errorf("plan gives no layout for input %q", in.Name)
		}
		if err := check(fmt.Sprintf("input %q", in.Name), p.Inputs[i], in.Name); err != nil {
			return err
		}
	}
	for i, node := range g.Nodes {
		np := p.Nodes[i]
		if np.Node != node.Name {
			return fmt.Errorf("plan operator %d is %q, the model's is %q", i, np.Node, node.Name)
		}
		what := fmt.Sprintf("operator %q", node.Name)
		if np.Out.Kind == plan.P {
			if np.In != nil {
				if err := check(what+" input", *np.In, node.Inputs[0]); err != nil {
					return err
				}
			}
		} else if err := check(what, np.Out, node.Outputs[0]); err != nil {
			return err
		}
		for k, v := range np.Via {
			if v != nil && k < len(node.Inputs) && node.Inputs[k] != "" {
				if err := check(fmt.Sprintf("%s input %d route", what, k), *v, node.Inputs[k]); err != nil {
					return err
				}
			}
		}
	}
	if _, err := partition.Compile(g, p, partition.Options{ShapesOnly: true}); err != nil {
		return fmt.Errorf("plan does not compile: %w", err)
	}
	return nil
}

func short(h string) string {
	if len(h) > 19 {
		return h[:19]
	}
	return h
}
