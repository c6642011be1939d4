package planner

import "github.com/iop-edge/iop/internal/plan"

// Optimal is the exact planner (dynamic programming over layouts). Until it
// lands it returns the best of the other strategies.
func Optimal(pr *Problem) (*plan.Plan, error) {
	var best *plan.Plan
	for _, s := range []string{"single", "oc", "hp", "coedge", "iop"} {
		p, err := Make(pr, s)
		if err != nil {
			continue
		}
		if Fits(pr, p.Prediction) >= 0 {
			continue
		}
		if best == nil || p.Prediction.LatencyMS < best.Prediction.LatencyMS {
			best = p
		}
	}
	if best == nil {
		return Single(pr)
	}
	q := clonePlan(best)
	q.Strategy = "optimal"
	_, err := Evaluate(pr, q)
	return q, err
}
