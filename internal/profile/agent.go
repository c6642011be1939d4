package profile

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/transport"
)

// Hello roles of the connections this package serves. A worker that hosts
// profiling dispatches them (after reading the hello control message, as
// for its "peer" and "coordinator" roles) to ServeSession and ServeProbe.
const (
	// RoleProfile: requests from `iop profile` (Request/Reply).
	RoleProfile = "profile"
	// RoleProbe: the far end of a link measurement (see MeasureLink).
	RoleProbe = "probe"
)

// Hello is the first control message on a connection to an agent or
// worker.
type Hello struct {
	Role string `json:"role"`
}

// Request is a control message from `iop profile` to a device.
type Request struct {
	// Type is "info", "bench-ops", "bench-layers", "bench-link",
	// "bench-mesh", "bench-msgs" or "bench-fanout".
	Type     string           `json:"type"`
	Ops      *OpsRequest      `json:"ops,omitempty"`
	Layers   *LayersRequest   `json:"layers,omitempty"`
	Link     *LinkRequest     `json:"link,omitempty"`
	Mesh     *MeshRequest     `json:"mesh,omitempty"`
	Messages *MessagesRequest `json:"messages,omitempty"`
	Fanout   *FanoutRequest   `json:"fanout,omitempty"`
}

// Reply answers a Request (same Type, or "error").
type Reply struct {
	Type   string        `json:"type"`
	Info   *Info         `json:"info,omitempty"`
	Ops    *OpsResult    `json:"ops,omitempty"`
	Layers *LayersResult `json:"layers,omitempty"`
	Link   *LinkResult   `json:"link,omitempty"`
	Mesh   *MeshResult   `json:"mesh,omitempty"`
	// Messages answers bench-msgs.
	Messages *MessagesResult `json:"messages,omitempty"`
	// Fanout answers bench-fanout.
	Fanout *FanoutResult `json:"fanout,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// Info describes the measuring process's machine.
type Info struct {
	Name       string `json:"name,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"`
}

// LocalInfo describes this process's machine.
func LocalInfo(name string) *Info {
	h, _ := os.Hostname()
	return &Info{Name: name, Hostname: h, OS: runtime.GOOS, Arch: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Kernel: kernels.KernelName()}
}

// AgentOptions configure the serving side.
type AgentOptions struct {
	// Name is reported in Info.
	Name string
	// Dialer opens the connection to a peer for a link measurement (from
	// this device: inside its namespace on a testbed).
	Dialer Dialer
	// TLS, when set, is required of incoming connections.
	TLS *tls.Config
	// Limits of the framed connections.
	Limits transport.Limits
}

// Serve accepts connections on ln and serves each (ServeConn) until ctx
// ends or ln fails. It is `iop profile agent`, for machines without a
// worker that hosts profiling.
func Serve(ctx context.Context, ln net.Listener, opt AgentOptions) error {
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("profile agent: %w", err)
		}
		go func() {
			if err := ServeConn(ctx, nc, opt); err != nil {
				slog.Warn("profile agent", "remote", nc.RemoteAddr(), "err", err)
			}
		}()
	}
}

// ServeConn reads a connection's hello and serves the role it names.
func ServeConn(ctx context.Context, nc net.Conn, opt AgentOptions) error {
	nc, err := transport.Accept(nc, opt.TLS, 10*time.Second)
	if err != nil {
		return err
	}
	c := transport.NewConn(nc, opt.Limits)
	defer c.Close()
	h, err := c.ReadHeader(time.Now().Add(10 * time.Second))
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if h.Kind != transport.Control {
		return fmt.Errorf("hello: got a %s frame", h.Kind)
	}
	var hello Hello
	if err := c.ReadControl(h, &hello); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if ok, err := ServeRole(ctx, hello.Role, c, opt); ok {
		return err
	}
	return fmt.Errorf("hello: role %q is not %q or %q", hello.Role, RoleProfile, RoleProbe)
}

// ServeRole serves a connection whose hello (already read) named role, if
// the role is the profiler's ("profile" or "probe"), and reports whether
// it was. This is the one call a worker needs in its hello dispatch:
//
//	default:
//		if ok, err := profile.ServeRole(ctx, hello.Role, c, opt); !ok { refuse } else if err != nil { log }
//
// The caller closes c afterwards.
func ServeRole(ctx context.Context, role string, c *transport.Conn, opt AgentOptions) (bool, error) {
	switch role {
	case RoleProfile:
		return true, ServeSession(ctx, c, opt)
	case RoleProbe:
		return true, ServeProbe(c)
	}
	return false, nil
}

// ServeSession answers Requests on c until it closes. The caller has read
// the hello and closes c afterwards.
func ServeSession(ctx context.Context, c *transport.Conn, opt AgentOptions) error {
	for {
		h, err := c.ReadHeader(time.Now().Add(24 * time.Hour))
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if h.Kind == transport.Ping {
			if _, err := c.ReadSmall(h); err != nil {
				return err
			}
			continue
		}
		if h.Kind != transport.Control {
			return fmt.Errorf("profile session: unexpected %s frame", h.Kind)
		}
		var req Request
		if err := c.ReadControl(h, &req); err != nil {
			return err
		}
		rep := Handle(ctx, req, opt)
		if err := c.WriteControl(h.Req, rep); err != nil {
			return err
		}
	}
}

// Handle runs one request on this device and returns the reply.
func Handle(ctx context.Context, req Request, opt AgentOptions) Reply {
	fail := func(err error) Reply { return Reply{Type: "error", Error: err.Error()} }
	switch req.Type {
	case "info":
		return Reply{Type: req.Type, Info: LocalInfo(opt.Name)}
	case "bench-ops":
		var r OpsRequest
		if req.Ops != nil {
			r = *req.Ops
		}
		res, err := MeasureOps(ctx, r)
		if err != nil {
			return fail(err)
		}
		return Reply{Type: req.Type, Ops: res}
	case "bench-layers":
		if req.Layers == nil {
			return fail(errors.New("bench-layers needs layers"))
		}
		res, err := MeasureLayers(ctx, *req.Layers)
		if err != nil {
			return fail(err)
		}
		return Reply{Type: req.Type, Layers: res}
	case "bench-link":
		if req.Link == nil || req.Link.Peer == "" {
			return fail(errors.New("bench-link needs a peer address"))
		}
		res, err := LinkTo(ctx, opt.Dialer, *req.Link, opt.Limits)
		if err != nil {
			return fail(err)
		}
		return Reply{Type: req.Type, Link: res}
	case "bench-mesh":
		if req.Mesh == nil || len(req.Mesh.Peers) == 0 {
			return fail(errors.New("bench-mesh needs peer addresses"))
		}
		res, err := MeasureMesh(ctx, opt.Dialer, *req.Mesh, opt.Limits)
		if err != nil {
			return fail(err)
		}
		return Reply{Type: req.Type, Mesh: res}
	case "bench-msgs":
		if req.Messages == nil || len(req.Messages.Peers) == 0 {
			return fail(errors.New("bench-msgs needs peer addresses"))
		}
		res, err := MeasureMessages(ctx, opt.Dialer, *req.Messages, opt.Limits)
		if err != nil {
			return fail(err)
		}
		return Reply{Type: req.Type, Messages: res}
	case "bench-fanout":
		if req.Fanout == nil {
			return fail(errors.New("bench-fanout needs peer addresses"))
		}
		res, err := MeasureFanout(ctx, opt.Dialer, *req.Fanout, opt.Limits)
		if err != nil {
			return fail(err)
		}
		return Reply{Type: req.Type, Fanout: res}
	}
	return fail(fmt.Errorf("unknown request %q", req.Type))
}

// LinkTo dials req.Peer with hello role "probe" and measures the link.
func LinkTo(ctx context.Context, d Dialer, req LinkRequest, lim transport.Limits) (*LinkResult, error) {
	req.defaults()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(req.Seconds*float64(time.Second))+time.Minute)
	defer cancel()
	c, err := dialProbe(ctx, d, req.Peer, shaper.Options{WriteRate: req.Rate}, lim)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", req.Peer, err)
	}
	defer c.Close()
	return MeasureLink(ctx, c, req)
}

// dialProbe connects to peer's ServeProbe (hello role "probe"), writes
// shaped in process as shape says (nothing set: unshaped).
func dialProbe(ctx context.Context, d Dialer, peer string, shape shaper.Options, lim transport.Limits) (*transport.Conn, error) {
	nc, err := d.Dial(ctx, peer)
	if err != nil {
		return nil, err
	}
	if shape.WriteRate > 0 || shape.WriteLimiter != nil {
		nc = shaper.New(nc, shape)
	}
	c := transport.NewConn(nc, lim)
	if err := c.WriteControl(0, Hello{Role: RoleProbe}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// dialPeers connects to every peer's ServeProbe (dialProbe); on an error
// it closes those it opened.
func dialPeers(ctx context.Context, d Dialer, peers []string, shape shaper.Options, lim transport.Limits) ([]*transport.Conn, error) {
	conns := make([]*transport.Conn, len(peers))
	for i, p := range peers {
		c, err := dialProbe(ctx, d, p, shape, lim)
		if err != nil {
			closeConns(conns)
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		conns[i] = c
	}
	return conns, nil
}

// closeConns closes every connection that is not nil.
func closeConns(conns []*transport.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// Dialer opens connections: with Net (e.g. from inside a testbed
// namespace) or plain TCP, then a TLS handshake when TLS is set. It is the
// transport's dialer.
type Dialer = transport.Dialer

// Client talks to one device's agent or worker as `iop profile` does.
type Client struct {
	Addr string
	c    *transport.Conn
	req  uint64
}

// Dial connects to a device and says hello with role "profile".
func Dial(ctx context.Context, addr string, d Dialer, lim transport.Limits) (*Client, error) {
	nc, err := d.Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	c := transport.NewConn(nc, lim)
	if err := c.WriteControl(0, Hello{Role: RoleProfile}); err != nil {
		c.Close()
		return nil, fmt.Errorf("profile: hello to %s: %w", addr, err)
	}
	return &Client{Addr: addr, c: c}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Do sends a request and waits for its reply (at most until ctx ends).
func (c *Client) Do(ctx context.Context, req Request) (*Reply, error) {
	c.req++
	if err := c.c.WriteControl(c.req, req); err != nil {
		return nil, fmt.Errorf("profile %s: %w", c.Addr, err)
	}
	type result struct {
		rep Reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		for {
			h, err := c.c.ReadHeader(time.Now().Add(24 * time.Hour))
			if err != nil {
				done <- result{err: err}
				return
			}
			if h.Kind == transport.Ping {
				if _, err := c.c.ReadSmall(h); err != nil {
					done <- result{err: err}
					return
				}
				continue
			}
			if h.Kind != transport.Control {
				done <- result{err: fmt.Errorf("unexpected %s frame", h.Kind)}
				return
			}
			var r Reply
			err = c.c.ReadControl(h, &r)
			done <- result{r, err}
			return
		}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("profile %s: %w", c.Addr, r.err)
		}
		if r.rep.Type == "error" {
			return nil, fmt.Errorf("profile %s: %s", c.Addr, r.rep.Error)
		}
		if r.rep.Type != req.Type {
			return nil, fmt.Errorf("profile %s: reply %q to a %q request", c.Addr, r.rep.Type, req.Type)
		}
		return &r.rep, nil
	case <-ctx.Done():
		c.c.Close()
		return nil, ctx.Err()
	}
}

// Info asks for the device's description.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	r, err := c.Do(ctx, Request{Type: "info"})
	if err != nil {
		return nil, err
	}
	return r.Info, nil
}

// Mesh asks the device to stream to all req.Peers at once.
func (c *Client) Mesh(ctx context.Context, req MeshRequest) (*MeshResult, error) {
	r, err := c.Do(ctx, Request{Type: "bench-mesh", Mesh: &req})
	if err != nil {
		return nil, err
	}
	if r.Mesh == nil || len(r.Mesh.Links) != len(req.Peers) {
		return nil, fmt.Errorf("profile %s: bench-mesh reply without its %d links", c.Addr, len(req.Peers))
	}
	return r.Mesh, nil
}

// Messages asks the device to exchange small tensors with all req.Peers in
// rounds.
func (c *Client) Messages(ctx context.Context, req MessagesRequest) (*MessagesResult, error) {
	r, err := c.Do(ctx, Request{Type: "bench-msgs", Messages: &req})
	if err != nil {
		return nil, err
	}
	if r.Messages == nil {
		return nil, fmt.Errorf("profile %s: empty bench-msgs reply", c.Addr)
	}
	return r.Messages, nil
}

// Ops asks the device to measure its operator speed.
func (c *Client) Ops(ctx context.Context, req OpsRequest) (*OpsResult, error) {
	r, err := c.Do(ctx, Request{Type: "bench-ops", Ops: &req})
	if err != nil {
		return nil, err
	}
	if r.Ops == nil {
		return nil, fmt.Errorf("profile %s: empty bench-ops reply", c.Addr)
	}
	return r.Ops, nil
}

// Link asks the device to measure its link to req.Peer.
func (c *Client) Link(ctx context.Context, req LinkRequest) (*LinkResult, error) {
	r, err := c.Do(ctx, Request{Type: "bench-link", Link: &req})
	if err != nil {
		return nil, err
	}
	if r.Link == nil {
		return nil, fmt.Errorf("profile %s: empty bench-link reply", c.Addr)
	}
	return r.Link, nil
}
