package coordinator

import (
	"sort"

	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/plan"
)

// NodeTime compares one model node's predicted and measured time: per
// device the time its program spent on the node's steps (compute, copies,
// waiting for receives, queuing sends), the slowest device counting.
type NodeTime struct {
	Node        string  `json:"node"`
	Op          string  `json:"op,omitempty"`
	PredictedMS float64 `json:"predicted_ms"`
	MeasuredMS  float64 `json:"measured_ms"`
}

// DeviceReport compares one device's predicted and measured memory.
type DeviceReport struct {
	Name string `json:"name"`
	// PeakMemoryBytes is the measured peak resident set (VmHWM) during the
	// request.
	PeakMemoryBytes          int64   `json:"peak_memory_bytes"`
	PredictedPeakMemoryBytes int64   `json:"predicted_peak_memory_bytes"`
	WeightBytes              int64   `json:"weight_bytes"`
	HeapBytes                int64   `json:"heap_bytes"`
	RunMS                    float64 `json:"run_ms"`
	PredictedComputeMS       float64 `json:"predicted_compute_ms"`
	MeasuredComputeMS        float64 `json:"measured_compute_ms"`
	BytesSent                int64   `json:"bytes_sent"`
}

// Compare lines up a request's traces with the plan's prediction and
// predicted timeline (nil: no per-node prediction). Nodes come in
// execution order of first appearance.
func Compare(pred *plan.Prediction, tl *cost.Timeline, res *Result) ([]NodeTime, []DeviceReport) {
	measured := map[string]float64{}
	pred0 := map[string]float64{}
	ops := map[string]string{}
	var order []string
	seen := map[string]bool{}
	note := func(n string) {
		if !seen[n] {
			seen[n] = true
			order = append(order, n)
		}
	}
	devs := make([]DeviceReport, len(res.Devices))
	for d, dr := range res.Devices {
		per := map[string]float64{}
		for _, e := range dr.Events {
			node := e.Orig
			if node == "" {
				node = "(input/output)"
			}
			note(node)
			if e.Op != "" && ops[node] == "" {
				ops[node] = e.Op
			}
			ms := float64(e.End-e.Start) / 1e6
			per[node] += ms
			if e.Kind == "compute" {
				devs[d].MeasuredComputeMS += ms
			}
			devs[d].BytesSent += e.BytesOut
		}
		for k, v := range per {
			measured[k] = max(measured[k], v)
		}
		devs[d].Name, devs[d].PeakMemoryBytes, devs[d].HeapBytes, devs[d].RunMS = dr.Name, dr.PeakRSS, dr.Heap, dr.RunMS
		if pred != nil && d < len(pred.Devices) {
			p := pred.Devices[d]
			devs[d].PredictedPeakMemoryBytes, devs[d].WeightBytes, devs[d].PredictedComputeMS = p.PeakMemoryBytes, p.WeightBytes, p.ComputeMS
		}
	}
	if tl != nil {
		for _, spans := range tl.Devices {
			per := map[string]float64{}
			for _, s := range spans {
				if s.Kind == "send" {
					continue // link time, not device time
				}
				node := s.Node
				if node == "" {
					node = "(input/output)"
				}
				note(node)
				if s.Op != "" && ops[node] == "" {
					ops[node] = s.Op
				}
				per[node] += s.EndMS - s.StartMS
			}
			for k, v := range per {
				pred0[k] = max(pred0[k], v)
			}
		}
	}
	rows := make([]NodeTime, 0, len(order))
	for _, n := range order {
		rows = append(rows, NodeTime{Node: n, Op: ops[n], PredictedMS: pred0[n], MeasuredMS: measured[n]})
	}
	return rows, devs
}

// Median of a list of values (0 for none).
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
