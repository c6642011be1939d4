package planner

import (
	"errors"
	"fmt"
	"math"

	"github.com/iop-edge/iop/internal/plan"
)

// baselineStrategies are the strategies Optimal must never lose to.
var baselineStrategies = []string{"single", "oc", "hp", "coedge", "iop"}

// Optimal plans with the dynamic program over layouts (see dp.go): every
// operator's scheme (R, S(d), OC/C, IC/P, SP/H, linear ops on P) and every
// transition between layouts is chosen to minimize the predicted latency
// under the devices' memory limits.
//
// The DP's few best plans are evaluated by the full simulator (Evaluate)
// together with the baselines (single, oc, hp, coedge, iop); the fastest
// plan that fits every device's memory is returned. So by construction
// Optimal never predicts a higher latency than a baseline that fits. If a
// DP plan overflows a device, the DP is rerun with a price on weight bytes
// on that device (a Lagrangian penalty) until a plan fits or the price
// stops helping. When no plan fits, the error is a *MemoryError naming the
// device, its limit and the least memory the closest plan needs there.
func Optimal(pr *Problem) (*plan.Plan, error) {
	var fits, all []*plan.Plan
	consider := func(p *plan.Plan) {
		all = append(all, p)
		if Fits(pr, p.Prediction) < 0 {
			fits = append(fits, p)
		}
	}
	dpPlans, err := optimalDP(pr)
	if err != nil {
		return nil, err
	}
	for _, p := range dpPlans {
		consider(p)
	}
	for _, s := range baselineStrategies {
		p, err := Make(pr, s)
		if err != nil {
			continue // a baseline with no plan that fits
		}
		consider(p)
	}
	var best *plan.Plan
	for _, p := range fits {
		if best == nil || p.Prediction.LatencyMS < best.Prediction.LatencyMS {
			best = p
		}
	}
	if best == nil {
		return nil, closestMemoryError(pr, all)
	}
	q := clonePlan(best)
	q.Strategy = "optimal"
	if _, err := Evaluate(pr, q); err != nil {
		return nil, err
	}
	return q, nil
}

// optimalDP runs the DP in both of its timing modes (operators start
// together: exact for that model; clocks carried along the path: the
// simulator's own timing, searched heuristically), with rising memory
// prices on devices its plans overflow, and returns its plans evaluated by
// the simulator.
func optimalDP(pr *Problem) ([]*plan.Plan, error) {
	var out []*plan.Plan
	for _, skew := range []bool{false, true} {
		ps, err := runDP(pr, dpConfig{keep: 2, skew: skew})
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// runDP runs one DP configuration. While its plans overflow a device (by
// the simulator's count, or the DP finds no path within its own estimate),
// the price of a weight byte on the offending devices is raised and the DP
// rerun, a few times at most.
func runDP(pr *Problem, cfg dpConfig) ([]*plan.Plan, error) {
	n := pr.Cluster.N()
	dp, err := newDP(pr, cfg)
	if err != nil {
		return nil, fmt.Errorf("optimal: %w", err)
	}
	scale := dp.floorTime()
	var out []*plan.Plan
	for iter := 0; iter < 8; iter++ {
		over := make([]bool, n)
		res, err := dp.run()
		switch {
		case errors.Is(err, errNoFit):
			for d, k := range dp.pruned {
				over[d] = k > 0
			}
		case err != nil:
			return nil, fmt.Errorf("optimal: %w", err)
		}
		fit := false
		for _, r := range res {
			if _, err := Evaluate(pr, r.plan); err != nil {
				continue // the DP proposed what the compiler rejects; skip it
			}
			out = append(out, r.plan)
			if Fits(pr, r.plan.Prediction) < 0 {
				fit = true
				continue
			}
			for d, dev := range r.plan.Prediction.Devices {
				if lim := int64(pr.Cluster.Devices[d].Memory); lim > 0 && dev.PeakMemoryBytes > lim {
					over[d] = true
				}
			}
		}
		if fit {
			break
		}
		raised := false
		for d := range over {
			if over[d] && pr.Cluster.Devices[d].Memory > 0 {
				// A device's whole memory in weights costs 1/4 of the
				// compute floor, then 1×, 4×, ...
				dp.cfg.penalty[d] = math.Max(dp.cfg.penalty[d]*4, scale/4/float64(pr.Cluster.Devices[d].Memory))
				raised = true
			}
		}
		if !raised {
			break
		}
	}
	return out, nil
}

// closestMemoryError describes the plan that comes closest to fitting:
// the one whose worst device overflows its limit by the least.
func closestMemoryError(pr *Problem, plans []*plan.Plan) error {
	var best *MemoryError
	var bestOver int64 = math.MaxInt64
	for _, p := range plans {
		var worst int64 = -1
		dev := -1
		for d, dp := range p.Prediction.Devices {
			lim := int64(pr.Cluster.Devices[d].Memory)
			if lim > 0 && dp.PeakMemoryBytes-lim > worst {
				worst, dev = dp.PeakMemoryBytes-lim, d
			}
		}
		if dev >= 0 && worst < bestOver {
			bestOver = worst
			best = newMemoryError(pr, dev, p.Prediction.Devices[dev].PeakMemoryBytes)
		}
	}
	if best == nil {
		return fmt.Errorf("optimal: no plan could be made for this model and cluster")
	}
	return best
}
