package profile

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/iop-edge/iop/internal/cputime"
	"github.com/iop-edge/iop/internal/transport"
)

// MeshRequest asks a device to stream to every peer at once, as every
// device does in the mesh measurement (see Cluster): the CPU time a
// worker's process spends per byte it moves when it sends to and receives
// from several peers together, as in an all-gather, is what the cost model
// charges. A single stream of large messages (MeasureLink) costs a third
// of that on the testbed: one connection, no contention for the process's
// threads, and the kernel's forwarding of the other devices' traffic
// lands on idle CPUs instead of on busy workers.
type MeshRequest struct {
	Peers []string `json:"peers"`
	// Link is the stream to each peer (Peer is set per peer; no pings
	// beyond one, no burst probes).
	Link LinkRequest `json:"link"`
}

// MeshResult is one device's side of the mesh measurement.
type MeshResult struct {
	// Links are the streams to Peers, in order (Sent is what each
	// carried).
	Links []*LinkResult `json:"links"`
	// CPUNS and WallNS are this process's CPU time and the wall time over
	// the whole measurement: its own streams and whatever its peers
	// streamed to it meanwhile.
	CPUNS  int64 `json:"cpu_ns"`
	WallNS int64 `json:"wall_ns"`
}

// MeasureMesh streams to all req.Peers at once and reports the process's
// CPU time over it.
func MeasureMesh(ctx context.Context, d Dialer, req MeshRequest, lim transport.Limits) (*MeshResult, error) {
	res := &MeshResult{Links: make([]*LinkResult, len(req.Peers))}
	errs := make([]error, len(req.Peers))
	start, cpu0 := time.Now(), cputime.Process()
	var wg sync.WaitGroup
	for i, p := range req.Peers {
		r := req.Link
		r.Peer, r.Pings, r.Bursts = p, 1, -1
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Links[i], errs[i] = LinkTo(ctx, d, r, lim)
		}()
	}
	wg.Wait()
	res.CPUNS, res.WallNS = (cputime.Process() - cpu0).Nanoseconds(), time.Since(start).Nanoseconds()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("mesh: %s: %w", req.Peers[i], err)
		}
	}
	return res, nil
}
