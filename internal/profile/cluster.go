package profile

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/transport"
)

// ClusterOptions configure Cluster.
type ClusterOptions struct {
	Ops  OpsRequest
	Link LinkRequest // Peer is filled per pair
	// Dialer connects to the devices (TLS, or from inside a namespace).
	Dialer Dialer
	Limits transport.Limits
	// SkipOps and SkipLinks keep the spec's speeds or links.
	SkipOps, SkipLinks bool
	// MeshSeconds is how long every device streams to every other at once
	// for the CPU time per byte moved (0: 2; negative: no mesh, the
	// single-stream figures stand).
	MeshSeconds float64
	// MessageRounds is how many rounds of small messages every device
	// exchanges with every other at once for the CPU time per message
	// (0: 300; negative: none, messages cost only their bytes).
	MessageRounds int
	// FanoutRounds is how many times each device (of three or more) sends
	// a tensor to every other at once, for how unevenly its connections
	// share its link (0: 8; negative: none, shares are even).
	FanoutRounds int
	// Model, when set, has its layers timed on every device (ModelLayers,
	// MeasureLayers) into the spec's LayerMS[ModelKey]; Layers sets the
	// budget and threads (its Layers field is filled here).
	Model    *graph.Graph
	ModelKey string
	Layers   LayersRequest
	// Progress, if set, is told what is being measured.
	Progress func(msg string)
}

// Report is everything Cluster measured.
type Report struct {
	Devices []DeviceReport `json:"devices"`
	Links   []PairReport   `json:"links"`
}

// DeviceReport is one device's measurement.
type DeviceReport struct {
	Name   string        `json:"name"`
	Info   *Info         `json:"info,omitempty"`
	Ops    *OpsResult    `json:"ops,omitempty"`
	Layers *LayersResult `json:"layers,omitempty"`
	Mesh   *MeshResult   `json:"mesh,omitempty"`
	// MeshBytes is what the device sent and received during the mesh
	// measurement, MeshCPUNSPerByte its CPU time per byte of that.
	MeshBytes        int64   `json:"mesh_bytes,omitempty"`
	MeshCPUNSPerByte float64 `json:"mesh_cpu_ns_per_byte,omitempty"`
	// Messages is the device's side of the message measurement,
	// MessageCPUNS its CPU time per message beyond the message's bytes.
	Messages     *MessagesResult `json:"messages,omitempty"`
	MessageCPUNS float64         `json:"message_cpu_ns,omitempty"`
	// Fanout is the device's fan-out measurement, ShareSpread the spread
	// fitted to it.
	Fanout      *FanoutResult `json:"fanout,omitempty"`
	ShareSpread float64       `json:"share_spread,omitempty"`
}

// PairReport is one link's measurement (A sends to B).
type PairReport struct {
	A    string      `json:"a"`
	B    string      `json:"b"`
	Link *LinkResult `json:"link"`
}

// Cluster measures every device of spec (each needs an Address where a
// worker or agent serves role "profile") and returns a copy of spec with
// measured speeds per class and links. Devices are measured one at a time
// (on an emulated testbed they share the machine's cores), links one pair
// at a time in one direction (they would share the devices' uplinks).
func Cluster(ctx context.Context, spec *cluster.Spec, opt ClusterOptions) (*cluster.Spec, *Report, error) {
	progress := opt.Progress
	if progress == nil {
		progress = func(string) {}
	}
	out := *spec
	out.Devices = append([]cluster.Device(nil), spec.Devices...)
	out.Links = append([]cluster.LinkOverride(nil), spec.Links...)
	rep := &Report{}

	clients := make([]*Client, len(spec.Devices))
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i, d := range spec.Devices {
		if d.Address == "" {
			return nil, nil, fmt.Errorf("profile: device %s has no address", d.Name)
		}
		c, err := Dial(ctx, d.Address, opt.Dialer, opt.Limits)
		if err != nil {
			return nil, nil, fmt.Errorf("profile: device %s: %w", d.Name, err)
		}
		clients[i] = c
		info, err := c.Info(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("profile: device %s: %w", d.Name, err)
		}
		rep.Devices = append(rep.Devices, DeviceReport{Name: d.Name, Info: info})
	}

	if !opt.SkipOps {
		for i, d := range spec.Devices {
			progress(fmt.Sprintf("%s (%s): operator speed", d.Name, d.Address))
			r, err := clients[i].Ops(ctx, opt.Ops)
			if err != nil {
				return nil, nil, fmt.Errorf("profile: device %s: %w", d.Name, err)
			}
			rep.Devices[i].Ops = r
			out.Devices[i].GFLOPS = r.GFLOPS
			out.Devices[i].ByClass = r.ByClass
			out.Devices[i].BytesPerSec = r.BytesPerSec
			out.Devices[i].CPUShare = r.Share
			out.Devices[i].CPUQuota, out.Devices[i].CPUPeriodMS = r.CPUQuota, r.CPUPeriodMS
		}
	}

	if opt.Model != nil {
		specs, index := ModelLayers(opt.Model)
		req := opt.Layers
		req.Layers = specs
		times := map[string]map[string]float64{}
		for i, d := range spec.Devices {
			progress(fmt.Sprintf("%s (%s): the %d layers of %s", d.Name, d.Address, len(specs), opt.ModelKey))
			r, err := clients[i].Layers(ctx, req)
			if err != nil {
				return nil, nil, fmt.Errorf("profile: device %s: layers of %s: %w", d.Name, opt.ModelKey, err)
			}
			rep.Devices[i].Layers = r
			byNode := map[string]float64{}
			for node, l := range index {
				if ms := r.MS[l]; ms > 0 {
					byNode[node] = round3(ms)
				}
			}
			times[d.Name] = byNode
		}
		layers := map[string]map[string]map[string]float64{}
		for k, v := range spec.LayerMS {
			layers[k] = v
		}
		layers[opt.ModelKey] = times
		out.LayerMS = layers
	}

	if !opt.SkipLinks && len(spec.Devices) > 1 {
		for i := range spec.Devices {
			for j := i + 1; j < len(spec.Devices); j++ {
				a, b := spec.Devices[i], spec.Devices[j]
				progress(fmt.Sprintf("link %s → %s", a.Name, b.Name))
				req := opt.Link
				req.Peer = b.Address
				r, err := clients[i].Link(ctx, req)
				if err != nil {
					return nil, nil, fmt.Errorf("profile: link %s → %s: %w", a.Name, b.Name, err)
				}
				rep.Links = append(rep.Links, PairReport{A: a.Name, B: b.Name, Link: r})
			}
		}
		out.Link, out.Links = summarizeLinks(rep.Links)
		setNetCPU(out.Devices, rep.Links)
		if opt.MeshSeconds >= 0 {
			progress("every device streaming to every other at once (network CPU per byte)")
			if err := measureMesh(ctx, spec, clients, opt, rep, out.Devices); err != nil {
				return nil, nil, err
			}
		}
		if opt.MessageRounds >= 0 && len(spec.Devices) > 1 {
			progress("every device exchanging small messages with every other (network CPU per message)")
			if err := measureMessages(ctx, spec, clients, opt, rep, out.Devices); err != nil {
				return nil, nil, err
			}
		}
		if opt.FanoutRounds >= 0 && len(spec.Devices) > 2 {
			if err := measureFanout(ctx, spec, clients, opt, rep, &out, progress); err != nil {
				return nil, nil, err
			}
		}
	}
	if !opt.SkipLinks {
		// The coordinator's link to each device (unshaped in process: it
		// is whatever path this process reaches the workers by), which
		// carries every request's inputs and outputs.
		var bw, lat []float64
		for _, d := range spec.Devices {
			progress(fmt.Sprintf("link coordinator → %s", d.Name))
			req := opt.Link
			req.Peer, req.Rate, req.LatencyMS = d.Address, 0, 0
			r, err := LinkTo(ctx, opt.Dialer, req, opt.Limits)
			if err != nil {
				return nil, nil, fmt.Errorf("profile: link coordinator → %s: %w", d.Name, err)
			}
			rep.Links = append(rep.Links, PairReport{A: "coordinator", B: d.Name, Link: r})
			bw, lat = append(bw, r.Bandwidth), append(lat, r.LatencyMS)
		}
		out.Coordinator = &cluster.Link{Bandwidth: cluster.Bandwidth(roundRate(median(bw))), LatencyMS: roundMS(median(lat))}
	}
	if err := out.Validate(); err != nil {
		return nil, nil, fmt.Errorf("profile: measured spec: %w", err)
	}
	return &out, rep, nil
}

// measureMesh has every device stream to every other at once and sets each
// device's CPU time per byte sent and received to its process's CPU time
// over the measurement per byte it moved (see MeshRequest).
func measureMesh(ctx context.Context, spec *cluster.Spec, clients []*Client, opt ClusterOptions, rep *Report, devs []cluster.Device) error {
	n := len(spec.Devices)
	req := opt.Link
	req.Seconds = opt.MeshSeconds
	if req.Seconds == 0 {
		req.Seconds = 2
	}
	if req.ChunkBytes == 0 {
		req.ChunkBytes = 256 << 10 // the size of a typical activation slice
	}
	peers := make([][]int, n)
	results := make([]*MeshResult, n)
	err := onEvery(spec, "mesh", func(i int, addrs []string, idx []int) (err error) {
		peers[i] = idx
		m := MeshRequest{Link: req, Peers: addrs}
		results[i], err = clients[i].Mesh(ctx, m)
		return err
	})
	if err != nil {
		return err
	}
	moved := make([]int64, n)
	for i, r := range results {
		for k, l := range r.Links {
			moved[i] += l.Sent
			moved[peers[i][k]] += l.Sent
		}
	}
	for i, r := range results {
		rep.Devices[i].Mesh = r
		rep.Devices[i].MeshBytes = moved[i]
		if moved[i] <= 0 || r.CPUNS <= 0 {
			continue
		}
		v := round3(float64(r.CPUNS) / float64(moved[i]))
		rep.Devices[i].MeshCPUNSPerByte = v
		devs[i].SendCPUNSPerByte, devs[i].RecvCPUNSPerByte = v, v
	}
	return nil
}

// onEvery runs f for every device at once, with the addresses and indices
// of its peers (every other device), and returns the first device's error.
func onEvery(spec *cluster.Spec, what string, f func(i int, addrs []string, idx []int) error) error {
	errs := make([]error, len(spec.Devices))
	var wg sync.WaitGroup
	for i := range spec.Devices {
		addrs, idx := peersOf(spec, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i, addrs, idx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("profile: device %s: %s: %w", spec.Devices[i].Name, what, err)
		}
	}
	return nil
}

// peersOf returns the addresses and indices of every device but device i.
func peersOf(spec *cluster.Spec, i int) (addrs []string, idx []int) {
	for j, d := range spec.Devices {
		if j != i {
			addrs, idx = append(addrs, d.Address), append(idx, j)
		}
	}
	return addrs, idx
}

// measureMessages has every device exchange small messages with every
// other at once (MessagesRequest) and sets each device's CPU time per
// message: its process's CPU time over the rounds, less what its per-byte
// figure already charges for the bytes, per message sent or received.
func measureMessages(ctx context.Context, spec *cluster.Spec, clients []*Client, opt ClusterOptions, rep *Report, devs []cluster.Device) error {
	n := len(spec.Devices)
	results := make([]*MessagesResult, n)
	err := onEvery(spec, "messages", func(i int, addrs []string, _ []int) (err error) {
		m := MessagesRequest{Peers: addrs, Rounds: opt.MessageRounds, Rate: opt.Link.Rate, LatencyMS: opt.Link.LatencyMS}
		results[i], err = clients[i].Messages(ctx, m)
		return err
	})
	if err != nil {
		return err
	}
	for i, r := range results {
		rep.Devices[i].Messages = r
		if r.Messages <= 0 || r.CPUNS <= 0 {
			continue
		}
		perByte := (devs[i].SendCPUNSPerByte + devs[i].RecvCPUNSPerByte) / 2
		v := max(0, float64(r.CPUNS)-perByte*float64(r.Bytes)) / float64(r.Messages)
		rep.Devices[i].MessageCPUNS = math.Round(v)
		devs[i].MessageCPUMS = round3(v / 1e6)
	}
	return nil
}

// measureFanout has each device in turn send a tensor to every other at
// once (FanoutRequest) and sets the ShareSpread of out's links to the
// median of the spreads fitted to each device's arrivals.
func measureFanout(ctx context.Context, spec *cluster.Spec, clients []*Client, opt ClusterOptions, rep *Report, out *cluster.Spec, progress func(string)) error {
	var spreads []float64
	for i, d := range spec.Devices {
		progress(fmt.Sprintf("%s sending to every other device at once (how its connections share its link)", d.Name))
		peers, _ := peersOf(spec, i)
		req := FanoutRequest{Peers: peers, Rounds: opt.FanoutRounds, Rate: opt.Link.Rate, LatencyMS: opt.Link.LatencyMS}
		r, err := clients[i].Fanout(ctx, req)
		if err != nil {
			return fmt.Errorf("profile: device %s: fan-out: %w", d.Name, err)
		}
		sg := FitShareSpread(earlyShare(r.DoneNS), len(peers))
		rep.Devices[i].Fanout, rep.Devices[i].ShareSpread = r, sg
		spreads = append(spreads, sg)
	}
	out.Link.ShareSpread = math.Round(median(spreads)*100) / 100
	for i := range out.Links {
		out.Links[i].ShareSpread = out.Link.ShareSpread
	}
	return nil
}

// setNetCPU sets each device's CPU time per byte sent and received over
// device links from the pair measurements (a pair is measured in one
// direction, so the first device has no receive sample and the last no send
// sample: those take the median of the other devices').
func setNetCPU(devs []cluster.Device, pairs []PairReport) {
	send, recv := map[string][]float64{}, map[string][]float64{}
	var allSend, allRecv []float64
	for _, p := range pairs {
		if p.A == "coordinator" || p.Link == nil {
			continue
		}
		if v := p.Link.SendCPUNSPerByte; v > 0 {
			send[p.A] = append(send[p.A], v)
			allSend = append(allSend, v)
		}
		if v := p.Link.RecvCPUNSPerByte; v > 0 {
			recv[p.B] = append(recv[p.B], v)
			allRecv = append(allRecv, v)
		}
	}
	pick := func(own, all []float64) float64 {
		switch {
		case len(own) > 0:
			return round3(median(own))
		case len(all) > 0:
			return round3(median(append([]float64(nil), all...)))
		}
		return 0
	}
	for i := range devs {
		devs[i].SendCPUNSPerByte = pick(send[devs[i].Name], allSend)
		devs[i].RecvCPUNSPerByte = pick(recv[devs[i].Name], allRecv)
	}
}

// summarizeLinks returns the typical link (median bandwidth and latency)
// and overrides for the pairs that differ from it by more than 15 % in
// bandwidth or by more than half (and 0.2 ms) in latency.
func summarizeLinks(pairs []PairReport) (cluster.Link, []cluster.LinkOverride) {
	var bws, lats, bursts []float64
	for _, p := range pairs {
		bws = append(bws, p.Link.Bandwidth)
		lats = append(lats, p.Link.LatencyMS)
		bursts = append(bursts, p.Link.BurstBytes)
	}
	base := cluster.Link{Bandwidth: cluster.Bandwidth(roundRate(median(bws))), LatencyMS: roundMS(median(lats)), BurstBytes: math.Round(median(bursts))}
	var over []cluster.LinkOverride
	for _, p := range pairs {
		bw, lat := p.Link.Bandwidth, p.Link.LatencyMS
		if math.Abs(bw-float64(base.Bandwidth)) > 0.15*float64(base.Bandwidth) ||
			math.Abs(lat-base.LatencyMS) > max(0.5*base.LatencyMS, 0.2) {
			over = append(over, cluster.LinkOverride{A: p.A, B: p.B,
				Link: cluster.Link{Bandwidth: cluster.Bandwidth(roundRate(bw)), LatencyMS: roundMS(lat), BurstBytes: math.Round(p.Link.BurstBytes)}})
		}
	}
	return base, over
}

// roundRate keeps three significant digits of a rate.
func roundRate(v float64) float64 { return round3(v) }

// roundMS rounds a latency to a microsecond.
func roundMS(v float64) float64 { return math.Round(v*1000) / 1000 }

// Local measures this machine and returns a one-device spec named name.
// The link is the cluster default (one device has no links to measure);
// the memory is the machine's total, or 0 where it cannot be read.
func Local(ctx context.Context, name string, req OpsRequest) (*cluster.Spec, *OpsResult, error) {
	r, err := MeasureOps(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	s := cluster.Uniform(1, r.GFLOPS, memTotal(), cluster.Bandwidth(cluster.DefaultBandwidthMbps*1e6/8), cluster.DefaultLatencyMS)
	s.Devices[0].Name = name
	s.Devices[0].ByClass = r.ByClass
	s.Devices[0].BytesPerSec = r.BytesPerSec
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	return s, r, nil
}

// memTotal reads MemTotal from /proc/meminfo (0 if unavailable).
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			fs := strings.Fields(rest)
			if len(fs) >= 1 {
				kb, _ := strconv.ParseInt(fs[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
