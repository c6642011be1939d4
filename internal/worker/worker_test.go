package worker_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/coordinator"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/engine"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/planner"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/worker"
	"github.com/iop-edge/iop/internal/zoo"
)

// serve starts n workers in this process (so the race detector sees the
// worker, the transport and the coordinator together).
func serve(t *testing.T, opts []worker.Options) ([]string, []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var names, addrs []string
	for i, o := range opts {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if o.Name == "" {
			o.Name = "dev" + string(rune('0'+i))
		}
		s := worker.New(ln, o)
		names, addrs = append(names, o.Name), append(addrs, ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Serve(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	return names, addrs
}

func TestInProcessWorkers(t *testing.T) {
	g, err := zoo.Build("tiny-inception")
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Optimize(g, nil, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	x := zoo.Input("tiny-inception", 2)
	s, err := engine.New(g, engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Run(x)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	names, addrs := serve(t, make([]worker.Options, 3))
	co := coordinator.New(names, addrs, coordinator.Options{Threads: 1, Shaping: worker.Shaping{Rate: 50e6, LatencyMS: 0.1}})
	defer co.Close()
	for _, strategy := range []string{"oc", "iop", "coedge"} {
		ps, err := planner.Programs(&planner.Problem{Graph: g, Cluster: cluster.Uniform(3, 4, 0, 12.5e6, 0.2), Params: cost.DefaultParams, ModelName: "tiny-inception"}, strategy)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := co.Deploy(context.Background(), ps, strategy, "tiny-inception"); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 3; k++ {
			res, err := co.Run(context.Background(), []*tensor.Tensor{x})
			if err != nil {
				t.Fatalf("%s: %v", strategy, err)
			}
			if err := tensor.AllClose(res.Outputs[0], want[0], 1e-4, 1e-5); err != nil {
				t.Fatalf("%s: %v", strategy, err)
			}
			for _, d := range res.Devices {
				if d.PeakRSS <= 0 || d.Heap <= 0 || len(d.Events) == 0 {
					t.Fatalf("%s: device report %+v", strategy, d)
				}
			}
		}
	}
}

func TestRefusesForeignPeer(t *testing.T) {
	names, addrs := serve(t, []worker.Options{{MemoryLimit: 1 << 30}})
	co := coordinator.New(names, addrs, coordinator.Options{ConnectTimeout: 2 * time.Second})
	defer co.Close()
	st, err := co.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Deployment != "" || st[0].MemoryLimit != 1<<30 {
		t.Fatalf("status %+v", st[0])
	}
	// Running before deploying is an error, not a hang.
	_, err = co.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "deploy") {
		t.Fatalf("run before deploy: %v", err)
	}
}

// The cost model predicts the garbage a worker holds from the worker's GC
// target: the two constants must agree.
func TestGCPercentMatchesCostModel(t *testing.T) {
	if cost.DefaultParams.GCPercent != worker.DefaultGCPercent {
		t.Errorf("cost.DefaultParams.GCPercent = %d, worker.DefaultGCPercent = %d", cost.DefaultParams.GCPercent, worker.DefaultGCPercent)
	}
}
