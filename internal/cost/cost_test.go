package cost_test

import (
	"math"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/plan"
	"github.com/iop-edge/iop/internal/planner"
	"github.com/iop-edge/iop/internal/zoo"
)

// TestCoordinatorIO: the prediction includes sending the inputs from the
// coordinator and returning the outputs over the coordinator's link.
func TestCoordinatorIO(t *testing.T) {
	g := tinyResNet(t)
	in, out := g.Inputs[0], g.Outputs[0]
	inBytes := float64(in.Shape.Numel() * 4)
	outBytes := float64(out.Shape.Numel() * 4)
	for _, strategy := range []string{"single", "oc", "coedge"} {
		latency := func(coord cluster.Link) float64 {
			spec := cluster.Uniform(2, 4, 0, 12.5e6, 0.2)
			spec.Coordinator = &coord
			ps := programs(t, g, spec, strategy)
			pred, _, err := cost.Predict(ps, spec, cost.DefaultParams)
			if err != nil {
				t.Fatal(err)
			}
			return pred.LatencyMS
		}
		fast := latency(cluster.Link{Bandwidth: 1e15})
		slow := latency(cluster.Link{Bandwidth: 1e6, LatencyMS: 1})
		// Single: the whole input to one device and its output back, in
		// series with the compute. Split strategies send at least the
		// input once in total over the shared link.
		want := (inBytes+outBytes)/1e6*1e3 + 2
		got := slow - fast
		if strategy == "single" && math.Abs(got-want) > 0.01*want {
			t.Errorf("%s: coordinator I/O adds %.3f ms, want %.3f", strategy, got, want)
		}
		if got < inBytes/1e6*1e3 {
			t.Errorf("%s: coordinator I/O adds %.3f ms, less than the input alone (%.3f ms)", strategy, got, inBytes/1e6*1e3)
		}
	}
}

func TestSharedArrivals(t *testing.T) {
	// 100 and 300 bytes at 100 B/s: both at 50 B/s until the first is
	// done at 2 s, then the other's remaining 200 bytes alone in 2 s.
	got := cost.SharedArrivals([]int64{300, 0, 100}, 100)
	want := []float64{4, 0, 2}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("SharedArrivals = %v, want %v", got, want)
		}
	}
}

// TestCalibration: measured layer times in the spec scale the compute
// steps of their nodes, whole (single) or sliced (oc), on the device they
// were measured on; other nodes and devices keep the class model; factors
// are clamped.
func TestCalibration(t *testing.T) {
	g := tinyResNet(t)
	spec := cluster.Uniform(2, 4, 0, 12.5e6, 0.2)
	var conv string
	for _, n := range g.Nodes {
		if n.Op == "Conv" {
			conv = n.Name
			break
		}
	}
	for _, strategy := range []string{"single", "oc"} {
		ps := programs(t, g, spec, strategy)
		computeMS := func(prm cost.Params) map[[2]string]float64 {
			_, tl, err := cost.Predict(ps, spec, prm)
			if err != nil {
				t.Fatal(err)
			}
			m := map[[2]string]float64{}
			for d, spans := range tl.Devices {
				for _, s := range spans {
					if s.Kind == "compute" {
						m[[2]string{spec.Devices[d].Name, s.Node + "/" + s.Op}] += s.EndMS - s.StartMS
					}
				}
			}
			return m
		}
		base := computeMS(cost.DefaultParams)
		// dev0 measured the conv 3× slower than the class model; 100× on
		// dev1 is clamped to 4×.
		est := 0.0
		for k, ms := range base {
			if k[0] == "dev0" && k[1] == conv+"/Conv" {
				est = ms
			}
		}
		if strategy == "single" && est == 0 {
			t.Fatalf("single: no compute step of %s on dev0 in %v", conv, base)
		}
		cn := nodeByName(g, conv)
		full := cost.NodeWork(cn, ops.InputsOf(g, cn), ops.OutputsOf(g, cn))
		fullMS := cost.Seconds(spec, 0, full) * 1e3
		s2 := *spec
		s2.LayerMS = map[string]map[string]map[string]float64{"tiny-resnet": {
			"dev0": {conv: 3 * fullMS},
			"dev1": {conv: 100 * fullMS},
		}}
		prm := cost.DefaultParams
		prm.Calibration = cost.CalibrationFor(g, &s2, "tiny-resnet")
		got := computeMS(prm)
		for k, ms := range base {
			want := ms
			if k[1] == conv+"/Conv" {
				want = ms * map[string]float64{"dev0": 3, "dev1": 4}[k[0]]
			}
			if math.Abs(got[k]-want) > 1e-9+1e-6*want {
				t.Errorf("%s: %s %s: %.6f ms, want %.6f", strategy, k[0], k[1], got[k], want)
			}
		}
	}
}

func nodeByName(g *graph.Graph, name string) *graph.Node {
	for _, n := range g.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// TestNetworkCPU: the CPU a device spends per byte sent and received is
// paid out of its waits for messages and otherwise delays it: nothing for
// a single device (no messages), something for oc, and at a cost per byte
// far above what the waits absorb, at least the received bytes' cost
// minus the time the device waited without it.
func TestNetworkCPU(t *testing.T) {
	g := tinyResNet(t)
	for _, strategy := range []string{"single", "oc"} {
		spec := cluster.Uniform(2, 4, 0, 12.5e6, 0.2)
		ps := programs(t, g, spec, strategy)
		predict := func(sendNS, recvNS, share float64) (*plan.Prediction, *cost.Timeline) {
			s := *spec
			s.Devices = append([]cluster.Device(nil), spec.Devices...)
			for i := range s.Devices {
				s.Devices[i].SendCPUNSPerByte, s.Devices[i].RecvCPUNSPerByte, s.Devices[i].CPUShare = sendNS, recvNS, share
			}
			pred, tl, err := cost.Predict(ps, &s, cost.DefaultParams)
			if err != nil {
				t.Fatal(err)
			}
			return pred, tl
		}
		base, baseTL := predict(0, 0, 0)
		some, _ := predict(500, 500, 0.5)
		huge, _ := predict(0, 1e6, 1)
		if strategy == "single" {
			if some.LatencyMS != base.LatencyMS || huge.LatencyMS != base.LatencyMS {
				t.Errorf("single: %.3f / %.3f ms with network CPU, %.3f without", some.LatencyMS, huge.LatencyMS, base.LatencyMS)
			}
			continue
		}
		if !(some.LatencyMS > base.LatencyMS) {
			t.Errorf("oc: %.3f ms with 500 ns/byte at half a core, %.3f without: want slower", some.LatencyMS, base.LatencyMS)
		}
		for d := range base.Devices {
			var waited float64
			for _, sp := range baseTL.Devices[d] {
				if sp.Kind == "recv-wait" {
					waited += sp.EndMS - sp.StartMS
				}
			}
			owed := float64(base.Devices[d].BytesReceived) * 1e6 / 1e9 * 1e3 // ms at 1 ms/KB
			if huge.LatencyMS < base.LatencyMS+owed-waited-1e-6 {
				t.Errorf("oc: device %d receives %d bytes (%.1f ms of CPU at 1 µs/byte) and waited %.1f ms: latency %.1f ms, want ≥ %.1f",
					d, base.Devices[d].BytesReceived, owed, waited, huge.LatencyMS, base.LatencyMS+owed-waited)
			}
		}
	}
}

// tinyResNet is the zoo's tiny-resnet after the planner's passes.
func tinyResNet(t *testing.T) *graph.Graph {
	t.Helper()
	g, err := zoo.Build("tiny-resnet")
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	return g
}

// programs plans g on spec with strategy and compiles the device programs.
func programs(t *testing.T, g *graph.Graph, spec *cluster.Spec, strategy string) *partition.Programs {
	t.Helper()
	ps, err := planner.Programs(&planner.Problem{Graph: g, Cluster: spec, Params: cost.DefaultParams, ModelName: "tiny-resnet"}, strategy)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// Under a CFS limit a short request on a fresh device runs at full speed
// (within one period's quota), a long one at the quota's share; the answer
// does not change between calls.
func TestPredictCFS(t *testing.T) {
	g := tinyResNet(t)
	spec := cluster.Uniform(2, 0.02, 0, 12.5e6, 0.1) // slow devices: ms of compute
	ps := programs(t, g, spec, "single")
	fluid, _, err := cost.Predict(ps, spec, cost.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	lim := *spec
	lim.Devices = append([]cluster.Device(nil), spec.Devices...)
	for i := range lim.Devices {
		lim.Devices[i].CPUQuota, lim.Devices[i].CPUPeriodMS = 0.5, 1000 // one long period: all burst
	}
	if err := lim.Validate(); err != nil {
		t.Fatal(err)
	}
	burst, tl, err := cost.Predict(ps, &lim, cost.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := cost.Predict(ps, &lim, cost.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if again.LatencyMS != burst.LatencyMS {
		t.Errorf("two predictions differ: %v and %v ms", burst.LatencyMS, again.LatencyMS)
	}
	compute := fluid.Devices[0].ComputeMS
	t.Logf("fluid %.3f ms (compute %.3f), 1 s period %.3f ms", fluid.LatencyMS, compute, burst.LatencyMS)
	if compute < 5 || compute > 400 {
		t.Fatalf("compute %.3f ms: the test wants a request of a few periods' length", compute)
	}
	// Within one period's 500 ms quota the compute runs at full speed:
	// half its time at the sustained 0.5 share, unless the period ends
	// first (phases are random): at most the fluid time plus a stall.
	if burst.LatencyMS >= fluid.LatencyMS+1000 || burst.LatencyMS < fluid.LatencyMS-compute/2-1e-6 {
		t.Errorf("with a 1 s period: %.3f ms against %.3f fluid", burst.LatencyMS, fluid.LatencyMS)
	}
	for i := range lim.Devices {
		lim.Devices[i].CPUPeriodMS = 0.5 // short periods: steadily at the share
	}
	steady, _, err := cost.Predict(ps, &lim, cost.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(steady.LatencyMS-fluid.LatencyMS) > 0.02*fluid.LatencyMS+1 {
		t.Errorf("with 0.5 ms periods: %.3f ms against %.3f fluid", steady.LatencyMS, fluid.LatencyMS)
	}
	for _, s := range tl.Devices[1] {
		if s.Kind == "compute" {
			t.Errorf("device 1 computes in a single-device plan: %+v", s)
		}
	}
}

// Each message sent or received costs its device MessageCPUMS on top of
// its bytes: a plan that exchanges messages gets slower by at least what
// its busiest device cannot pay while it waits; one that exchanges none
// does not change.
func TestMessageCPU(t *testing.T) {
	g := tinyResNet(t)
	for _, strategy := range []string{"single", "oc"} {
		spec := cluster.Uniform(2, 4, 0, 12.5e6, 0.2)
		ps := programs(t, g, spec, strategy)
		predict := func(msgMS float64) *plan.Prediction {
			s := *spec
			s.Devices = append([]cluster.Device(nil), spec.Devices...)
			for i := range s.Devices {
				s.Devices[i].MessageCPUMS, s.Devices[i].CPUShare = msgMS, 1
			}
			pred, _, err := cost.Predict(ps, &s, cost.DefaultParams)
			if err != nil {
				t.Fatal(err)
			}
			return pred
		}
		base, costly := predict(0), predict(2)
		if strategy == "single" {
			if costly.LatencyMS != base.LatencyMS {
				t.Errorf("single: %.3f ms with message CPU, %.3f without", costly.LatencyMS, base.LatencyMS)
			}
			continue
		}
		// Device 0 sends and receives Messages/2 of the messages, if
		// evenly split; 2 ms each is far more than the waits can hide.
		if base.Messages == 0 || costly.LatencyMS < base.LatencyMS+float64(base.Messages)/2 {
			t.Errorf("oc: %d messages at 2 ms of CPU each: %.1f ms, %.1f without", base.Messages, costly.LatencyMS, base.LatencyMS)
		}
	}
}

// Uneven connection shares (share_spread) slow an all-gather, whose
// devices wait for their slowest message, and are drawn with fixed seeds:
// the same spec predicts the same latency. A single device is unchanged.
func TestShareSpread(t *testing.T) {
	g := tinyResNet(t)
	for _, strategy := range []string{"single", "oc"} {
		spec := cluster.Uniform(3, 4, 0, 12.5e6, 0.2)
		ps := programs(t, g, spec, strategy)
		predict := func(sigma float64) float64 {
			s := *spec
			s.Link.ShareSpread = sigma
			pred, _, err := cost.Predict(ps, &s, cost.DefaultParams)
			if err != nil {
				t.Fatal(err)
			}
			return pred.LatencyMS
		}
		even, uneven := predict(0), predict(0.6)
		t.Logf("%s: %.3f ms with even shares, %.3f with σ 0.6", strategy, even, uneven)
		if again := predict(0.6); again != uneven {
			t.Errorf("%s: %.6f then %.6f ms for the same spec", strategy, uneven, again)
		}
		if strategy == "single" && uneven != even {
			t.Errorf("single: %.3f ms with uneven shares, %.3f without", uneven, even)
		}
		if strategy == "oc" && !(uneven > even) {
			t.Errorf("oc: %.3f ms with uneven shares, not above %.3f with even ones", uneven, even)
		}
	}
}
