package worker

import (
	"github.com/iop-edge/iop/internal/partition"
)

// Control messages between the coordinator and a worker are JSON in
// transport.Control frames; tensors (weight shards, inputs, outputs) travel
// as raw transport tensors. JSON rather than protobuf: the control messages
// are small and rare (one deploy, then one message each way per request),
// JSON needs no generated code or schema compiler in the build, and a
// person can read a captured exchange. Every byte that scales with the
// model or the image is raw.
//
// Coordinator connection:
//
//	coordinator                         worker
//	Hello{role:coordinator}      ─►
//	                             ◄─     Reply{status}
//	Msg{status}                  ─►
//	                             ◄─     Reply{status}
//	Msg{deploy}                  ─►     (checks the memory limit)
//	                             ◄─     Reply{ready} | Reply{error}
//	tensor × len(consts)         ─►     (weight shards, streamed)
//	                             ◄─     Reply{deployed} | Reply{error}
//	Msg{run} + tensor × inputs   ─►     (runs; peers talk directly)
//	Msg{cancel}                  ─►     (optional, aborts the request)
//	                             ◄─     tensor × outputs, Reply{result} | Reply{error}

// Hello is the first message of every connection to a worker. Peers send a
// transport.PeerHello (role "peer") instead.
type Hello struct {
	Role string `json:"role"` // "coordinator" or "peer"
}

// Msg is a message from the coordinator.
type Msg struct {
	Type   string      `json:"type"` // status, deploy, run, cancel
	Deploy *Deploy     `json:"deploy,omitempty"`
	Run    *RunRequest `json:"run,omitempty"`
	Req    uint64      `json:"req,omitempty"` // cancel
}

// Shaping is the in-process link emulation a worker applies to its peer
// connections when the kernel testbed is not used (loopback+token-bucket).
type Shaping struct {
	// Rate is the device's link rate in bytes/s in each direction (0: none).
	Rate float64 `json:"rate,omitempty"`
	// LatencyMS is added to every message.
	LatencyMS float64 `json:"latency_ms,omitempty"`
}

// Deploy gives a worker its program; its weight shards follow as tensors
// (tags 0..len(Program.Consts)-1, in that order).
type Deploy struct {
	// Deployment identifies this deployment of this device (plan, device,
	// peer addresses, emulation); a worker that already holds it is not
	// deployed again.
	Deployment string `json:"deployment"`
	PlanHash   string `json:"plan_hash"`
	Model      string `json:"model"`
	Device     int    `json:"device"`
	// Addrs are the listen addresses of all devices (the mesh).
	Addrs []string `json:"addrs"`
	// Names are the devices' names (for messages).
	Names   []string               `json:"names,omitempty"`
	Program *partition.ProgramSpec `json:"program"`
	Shaping Shaping                `json:"shaping"`
	// Threads for the kernels (0: all cores).
	Threads int `json:"threads,omitempty"`
}

// RunRequest starts request Req; its input tensors follow (tags 0..).
type RunRequest struct {
	Req        uint64 `json:"req"`
	Deployment string `json:"deployment"`
	// TimeoutMS bounds the whole request on the worker.
	TimeoutMS int64 `json:"timeout_ms"`
	// MeshTimeoutMS bounds (re)connecting to peers.
	MeshTimeoutMS int64 `json:"mesh_timeout_ms"`
	Inputs        int   `json:"inputs"`
}

// Reply is a message from a worker.
type Reply struct {
	Type   string  `json:"type"` // status, ready, deployed, result, error
	Status *Status `json:"status,omitempty"`
	Result *Result `json:"result,omitempty"`
	Error  string  `json:"error,omitempty"`
	// Canceled marks an error caused by the coordinator's cancel (a
	// consequence, not a cause).
	Canceled bool `json:"canceled,omitempty"`
}

// Status describes a worker.
type Status struct {
	Name        string `json:"name"`
	Deployment  string `json:"deployment,omitempty"`
	PlanHash    string `json:"plan_hash,omitempty"`
	Device      int    `json:"device"`
	MemoryLimit int64  `json:"memory_limit,omitempty"`
	WeightBytes int64  `json:"weight_bytes"`
	Memory
}

// Memory is a worker's measured memory.
type Memory struct {
	// PeakRSS is VmHWM from /proc/self/status: the peak resident set since
	// the request started (the peak is reset at each request where the
	// kernel allows) or since the process started.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// RSS is VmRSS now.
	RSS int64 `json:"rss_bytes"`
	// Heap is the Go heap in use (runtime.MemStats.HeapInuse).
	Heap int64 `json:"heap_bytes"`
	// HeapSys is the heap memory obtained from the OS.
	HeapSys int64 `json:"heap_sys_bytes"`
}

// Result is what a worker reports after a request (its output tensors come
// before it).
type Result struct {
	Req     uint64            `json:"req"`
	Outputs int               `json:"outputs"`
	Events  []partition.Event `json:"events"`
	// RunNS is the time inside the program; MeshNS the time spent
	// (re)connecting peers first.
	RunNS  int64 `json:"run_ns"`
	MeshNS int64 `json:"mesh_ns"`
	// StartUnixNS is the worker's wall clock when the program started (the
	// events' zero), so a coordinator on a synchronized clock can line up
	// the devices' traces.
	StartUnixNS int64 `json:"start_unix_ns,omitempty"`
	Memory
}
