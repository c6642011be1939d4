package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/tensor"
)

// PeerHello is the first message on a peer connection: the dialing device
// says who it is and which deployment it belongs to.
type PeerHello struct {
	Role       string `json:"role"` // "peer"
	Deployment string `json:"deployment"`
	From       int    `json:"from"`
	To         int    `json:"to"`
}

// HelloReply answers a hello; a non-empty Error refuses the connection.
type HelloReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// MeshConfig describes one device's place in a full mesh.
type MeshConfig struct {
	// Self is this device's index; Addrs are every device's listen address.
	Self  int
	Addrs []string
	// Names of the devices for messages (optional).
	Names []string
	// Deployment identifies the deployment; peers of another deployment are
	// refused.
	Deployment string
	// Dial opens a connection (plain TCP or TLS; shaping is applied after).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Wrap, if set, wraps every peer connection (traffic shaping).
	Wrap func(net.Conn) net.Conn
	// Limits of every peer connection.
	Limits Limits
	// PingInterval is how often an idle connection sends a ping (default a
	// quarter of the read timeout).
	PingInterval time.Duration
	// Fault, if set, is installed on every peer connection (tests).
	Fault FaultHook
	// Latency, when set, emulates the links' per-message latency: Recv
	// hands over a tensor no earlier than Latency after its last byte was
	// read. The receiver applies it, not the sender: on a real link a
	// message does not wait for its sender to be scheduled again after
	// the send, and a sender that computes on (or whose CPU quota is spent)
	// would hold it back (docs/RUNTIME.md).
	Latency time.Duration
}

// Mesh is one device's connections to all its peers for one deployment. Device
// i dials every device j < i and accepts connections from every j > i; each
// pair shares one connection in both directions. A peer connection has a
// writer goroutine draining a queue (so a Send never waits for the network)
// and a reader goroutine that files every arriving tensor in a mailbox under
// (request, peer, tag), where Recv finds it.
type Mesh struct {
	cfg MeshConfig

	mu      sync.Mutex
	peers   []*peer
	changed chan struct{} // closed and replaced when a peer (re)connects
	box     map[boxKey]*slot
	minReq  uint64 // messages of older requests are dropped
	closed  bool
}

type boxKey struct {
	req  uint64
	peer int
	tag  int32
}

type slot struct {
	ready chan struct{}
	t     *tensor.Tensor
	due   time.Time // not handed over before (MeshConfig.Latency)
}

// NewMesh returns a mesh with no connections yet; call Ensure.
func NewMesh(cfg MeshConfig) *Mesh {
	if cfg.Limits.ReadTimeout <= 0 {
		cfg.Limits.ReadTimeout = 30 * time.Second
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = cfg.Limits.ReadTimeout / 4
	}
	return &Mesh{cfg: cfg, peers: make([]*peer, len(cfg.Addrs)), changed: make(chan struct{}), box: map[boxKey]*slot{}}
}

// Deployment is the deployment id the mesh belongs to.
func (m *Mesh) Deployment() string { return m.cfg.Deployment }

// Close closes every peer connection.
func (m *Mesh) Close() {
	m.mu.Lock()
	m.closed = true
	ps := append([]*peer(nil), m.peers...)
	m.mu.Unlock()
	for _, p := range ps {
		if p != nil {
			p.fail(errors.New("mesh closed"))
		}
	}
}

// Ensure (re)connects every peer whose connection is missing or broken:
// it dials lower-indexed devices (retrying with backoff) and waits for the
// higher-indexed ones to dial in, until ctx ends.
func (m *Mesh) Ensure(ctx context.Context) error {
	n := len(m.cfg.Addrs)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for j := 0; j < m.cfg.Self; j++ {
		if m.alive(j) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[j] = m.dialPeer(ctx, j)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for j := m.cfg.Self + 1; j < n; j++ {
		for !m.alive(j) {
			m.mu.Lock()
			ch := m.changed
			m.mu.Unlock()
			if m.alive(j) {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return fmt.Errorf("peer %s did not connect: %w", m.label(j), ctx.Err())
			}
		}
	}
	return nil
}

// label names device j for messages.
func (m *Mesh) label(j int) string {
	if j < len(m.cfg.Names) && m.cfg.Names[j] != "" {
		return fmt.Sprintf("device %s (%s)", m.cfg.Names[j], m.cfg.Addrs[j])
	}
	return fmt.Sprintf("device %d (%s)", j, m.cfg.Addrs[j])
}

func (m *Mesh) selfLabel() string {
	if m.cfg.Self < len(m.cfg.Names) && m.cfg.Names[m.cfg.Self] != "" {
		return "device " + m.cfg.Names[m.cfg.Self]
	}
	return fmt.Sprintf("device %d", m.cfg.Self)
}

func (m *Mesh) alive(j int) bool {
	m.mu.Lock()
	p := m.peers[j]
	m.mu.Unlock()
	return p != nil && !p.isDead()
}

// dialPeer connects to device j, retrying with exponential backoff.
func (m *Mesh) dialPeer(ctx context.Context, j int) error {
	addr := m.cfg.Addrs[j]
	var last error
	for backoff := 20 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err := m.dialOnce(ctx, j)
		if err == nil {
			return nil
		}
		// A refusal is retried too: the peer may still be deploying.
		last = err
		slog.Debug("dial peer", "device", j, "addr", addr, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot connect to peer %s: %v (%w)", m.label(j), last, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

type refusedError struct{ msg string }

func (e refusedError) Error() string { return e.msg }

func (m *Mesh) dialOnce(ctx context.Context, j int) error {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nc, err := m.cfg.Dial(dctx, m.cfg.Addrs[j])
	if err != nil {
		return err
	}
	if m.cfg.Wrap != nil {
		nc = m.cfg.Wrap(nc)
	}
	c := NewConn(nc, m.cfg.Limits)
	if err := c.WriteControl(0, PeerHello{Role: "peer", Deployment: m.cfg.Deployment, From: m.cfg.Self, To: j}); err != nil {
		c.Close()
		return err
	}
	dl, _ := dctx.Deadline()
	h, err := c.ReadHeader(dl)
	if err != nil {
		c.Close()
		return err
	}
	if h.Kind != Control {
		c.Close()
		return fmt.Errorf("%w: peer answered hello with a %s frame", ErrCorrupt, h.Kind)
	}
	var rep HelloReply
	if err := c.ReadControl(h, &rep); err != nil {
		c.Close()
		return err
	}
	if !rep.OK {
		c.Close()
		return refusedError{fmt.Sprintf("device %d refused the connection: %s", j, rep.Error)}
	}
	m.attach(j, c)
	return nil
}

// Accept takes over an incoming connection whose hello has been read. It
// answers the hello and, if it is for this mesh, adds the peer (replacing
// an older connection from the same device).
func (m *Mesh) Accept(c *Conn, hello PeerHello) error {
	var reason string
	switch {
	case hello.Deployment != m.cfg.Deployment:
		reason = "it belongs to another deployment"
	case hello.To != m.cfg.Self:
		reason = fmt.Sprintf("this is device %d, not %d", m.cfg.Self, hello.To)
	case hello.From <= m.cfg.Self || hello.From >= len(m.cfg.Addrs):
		reason = fmt.Sprintf("device %d may not dial device %d", hello.From, m.cfg.Self)
	}
	if reason != "" {
		c.WriteControl(0, HelloReply{Error: reason})
		c.Close()
		return fmt.Errorf("refused peer connection from %s: %s", c.RemoteAddr(), reason)
	}
	if err := c.WriteControl(0, HelloReply{OK: true}); err != nil {
		c.Close()
		return err
	}
	m.attach(hello.From, c)
	return nil
}

// Refuse answers a peer hello that no mesh can take.
func Refuse(c *Conn, reason string) {
	c.WriteControl(0, HelloReply{Error: reason})
	c.Close()
}

func (m *Mesh) attach(j int, c *Conn) {
	if m.cfg.Fault != nil {
		c.Fault = m.cfg.Fault
	}
	p := &peer{m: m, idx: j, c: c, dead: make(chan struct{}), wake: make(chan struct{}, 1)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		c.Close()
		return
	}
	old := m.peers[j]
	m.peers[j] = p
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	slog.Debug("peer attached", "self", m.cfg.Self, "peer", j, "replaces", old != nil)
	if old != nil {
		old.fail(errors.New("replaced by a new connection"))
	}
	go p.readLoop()
	go p.writeLoop()
}

// Finish ends request req on this device: messages of it and older
// requests still in the mailbox or arriving later are dropped. Queued sends
// still go out (peers may need them); Abort drops them too.
func (m *Mesh) Finish(req uint64) {
	m.mu.Lock()
	if req+1 > m.minReq {
		m.minReq = req + 1
	}
	for k := range m.box {
		if k.req <= req {
			delete(m.box, k)
		}
	}
	m.mu.Unlock()
}

// Abort ends a failed request: like Finish, and its unsent messages are
// dropped.
func (m *Mesh) Abort(req uint64) {
	m.Finish(req)
	m.mu.Lock()
	ps := append([]*peer(nil), m.peers...)
	m.mu.Unlock()
	for _, p := range ps {
		if p != nil {
			p.dropBefore(req + 1)
		}
	}
}

func (m *Mesh) deliver(req uint64, from int, tag int32, t *tensor.Tensor, due time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if req < m.minReq {
		return
	}
	k := boxKey{req, from, tag}
	s := m.box[k]
	if s == nil {
		s = &slot{ready: make(chan struct{})}
		m.box[k] = s
	}
	if s.t != nil {
		return // duplicate; keep the first
	}
	s.t, s.due = t, due
	close(s.ready)
}

// Request returns the partition.Transport of request req.
func (m *Mesh) Request(req uint64) partition.Transport { return reqTransport{m, req} }

type reqTransport struct {
	m   *Mesh
	req uint64
}

// Send queues t for peer; it returns at once unless the peer's connection is
// broken.
func (r reqTransport) Send(ctx context.Context, peerIdx, tag int, t *tensor.Tensor) error {
	m := r.m
	if peerIdx < 0 || peerIdx >= len(m.peers) || peerIdx == m.cfg.Self {
		return fmt.Errorf("send to invalid device %d", peerIdx)
	}
	m.mu.Lock()
	p := m.peers[peerIdx]
	m.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no connection to device %d", peerIdx)
	}
	return p.enqueue(item{req: r.req, tag: int32(tag), t: t})
}

// Recv waits for the tensor with tag from peer.
func (r reqTransport) Recv(ctx context.Context, peerIdx, tag int) (*tensor.Tensor, error) {
	m := r.m
	if peerIdx < 0 || peerIdx >= len(m.peers) || peerIdx == m.cfg.Self {
		return nil, fmt.Errorf("receive from invalid device %d", peerIdx)
	}
	k := boxKey{r.req, peerIdx, int32(tag)}
	m.mu.Lock()
	s := m.box[k]
	if s == nil {
		s = &slot{ready: make(chan struct{})}
		m.box[k] = s
	}
	p := m.peers[peerIdx]
	m.mu.Unlock()
	var dead <-chan struct{}
	if p != nil {
		dead = p.dead
	} else {
		return nil, fmt.Errorf("no connection to device %d", peerIdx)
	}
	take := func() *tensor.Tensor {
		m.mu.Lock()
		delete(m.box, k)
		m.mu.Unlock()
		shaper.SleepUntil(s.due)
		return s.t
	}
	select {
	case <-s.ready:
		return take(), nil
	case <-dead:
		select {
		case <-s.ready:
			return take(), nil
		default:
		}
		return nil, p.error()
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for tag %d: %w", tag, ctx.Err())
	}
}

// peer is one connection of the mesh.
type peer struct {
	m   *Mesh
	idx int
	c   *Conn

	mu      sync.Mutex
	queue   []item
	writing bool // a tensor is being written (by writeLoop or inline)
	wake    chan struct{}
	dead    chan struct{}
	err     error
}

type item struct {
	req uint64
	tag int32
	t   *tensor.Tensor
}

func (p *peer) isDead() bool {
	select {
	case <-p.dead:
		return true
	default:
		return false
	}
}

func (p *peer) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *peer) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = fmt.Errorf("connection to %s lost: %w", p.m.label(p.idx), err)
		close(p.dead)
		p.queue = nil
	}
	p.mu.Unlock()
	p.c.Close()
}

func (p *peer) enqueue(it item) error {
	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		return err
	}
	if !p.writing && len(p.queue) == 0 && it.t.Bytes() <= inlineWriteBytes {
		// Nothing ahead of it: write it from the caller, so it is in the
		// socket before the caller computes on, instead of waiting for
		// the writer goroutine to be scheduled.
		p.writing = true
		p.mu.Unlock()
		err := p.c.WriteTensor(it.req, int(it.tag), it.t)
		p.mu.Lock()
		p.writing = false
		more := len(p.queue) > 0
		p.mu.Unlock()
		if err != nil {
			p.fail(err)
			return p.error()
		}
		if more {
			p.signal()
		}
		return nil
	}
	p.queue = append(p.queue, it)
	p.mu.Unlock()
	p.signal()
	return nil
}

// inlineWriteBytes is the largest tensor a sender writes itself when its
// connection is idle; larger ones go through writeLoop, so a send never
// blocks its caller on a slow link.
const inlineWriteBytes = 64 << 10

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peer) dropBefore(req uint64) {
	p.mu.Lock()
	q := p.queue[:0]
	for _, it := range p.queue {
		if it.req >= req {
			q = append(q, it)
		}
	}
	clear(p.queue[len(q):])
	p.queue = q
	p.mu.Unlock()
}

func (p *peer) writeLoop() {
	ping := time.NewTicker(p.m.cfg.PingInterval)
	defer ping.Stop()
	for {
		p.mu.Lock()
		var it item
		have := len(p.queue) > 0 && !p.writing
		if have {
			it = p.queue[0]
			p.queue[0] = item{}
			p.queue = p.queue[1:]
			p.writing = true
		}
		p.mu.Unlock()
		if have {
			err := p.c.WriteTensor(it.req, int(it.tag), it.t)
			p.mu.Lock()
			p.writing = false
			p.mu.Unlock()
			if err != nil {
				p.fail(err)
				return
			}
			continue
		}
		select {
		case <-p.wake:
		case <-ping.C:
			if err := p.c.WriteFrame(Header{Kind: Ping}, nil); err != nil {
				p.fail(err)
				return
			}
		case <-p.dead:
			return
		}
	}
}

// failProtocol fails the connection after a protocol error (corrupted or
// oversized frame), first telling the peer why, so its error names the
// cause rather than a bare EOF.
func (p *peer) failProtocol(err error) {
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.c.WriteFrame(Header{Kind: Abort}, []byte(fmt.Sprintf("%s: %v", p.m.selfLabel(), err)))
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
	}
	p.fail(err)
}

func (p *peer) readLoop() {
	for {
		h, err := p.c.ReadHeader(time.Time{})
		if err != nil {
			p.failProtocol(err)
			return
		}
		switch h.Kind {
		case Ping:
			if _, err := p.c.ReadSmall(h); err != nil {
				p.fail(err)
				return
			}
		case TensorHead:
			t, err := p.c.ReadTensorBody(h)
			if err != nil {
				p.failProtocol(err)
				return
			}
			var due time.Time
			if lat := p.m.cfg.Latency; lat > 0 {
				due = time.Now().Add(lat)
			}
			p.m.deliver(h.Req, p.idx, h.Tag, t, due)
		case Abort:
			b, err := p.c.ReadSmall(h)
			if err != nil {
				p.fail(err)
				return
			}
			p.fail(fmt.Errorf("the peer closed it: %s", b))
			return
		default:
			p.failProtocol(fmt.Errorf("%w: unexpected %s frame on a peer connection", ErrCorrupt, h.Kind))
			return
		}
	}
}
