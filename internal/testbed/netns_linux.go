//go:build linux

package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// inNamespace runs fn on an OS thread that has joined network namespace ns.
// Sockets created by fn stay in ns after the thread returns to the host's
// namespace, so this process can talk through a device's link without a
// helper process.
func inNamespace(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testbed: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join(netnsDir, ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testbed: namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testbed: enter namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime destroys it when this
			// goroutine exits, so no other goroutine runs in ns.
			errc <- errors.Join(ferr, fmt.Errorf("testbed: leave namespace %s: %w", ns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Listen listens on addr (e.g. ":0" or "10.x.0.1:9000") inside device i's
// namespace. The listener is used from this process as usual.
func (b *Bed) Listen(i int, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNamespace(b.Devices[i].Namespace, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// Dial connects from inside device i's namespace. addr must be a literal
// IP address and port.
func (b *Bed) Dial(ctx context.Context, i int, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNamespace(b.Devices[i].Namespace, func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// MeasureBandwidth sends a TCP stream from device i to device j for about
// d and returns the goodput the receiver saw, in bytes per second, leaving
// out the first fifth of the time (slow start, the bucket's initial burst).
// Both ends run in this process, so the devices' CPU limits do not apply.
func (b *Bed) MeasureBandwidth(ctx context.Context, i, j int, d time.Duration) (float64, error) {
	ln, err := b.Listen(j, "tcp4", b.Devices[j].Addr+":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return measure(ctx, ln, func() (net.Conn, error) {
		return b.Dial(ctx, i, "tcp4", ln.Addr().String())
	}, d)
}

// measure streams through a connection from dial to ln for d.
func measure(ctx context.Context, ln net.Listener, dial func() (net.Conn, error), d time.Duration) (float64, error) {
	type result struct {
		rate float64
		err  error
	}
	res := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		rate, err := Sink(c, d/5)
		res <- result{rate, err}
	}()
	c, err := dial()
	if err != nil {
		ln.Close()
		<-res
		return 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	buf := make([]byte, 64<<10)
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		if _, err := c.Write(buf); err != nil {
			return 0, fmt.Errorf("testbed: send: %w", err)
		}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	r := <-res
	if r.err != nil {
		return 0, r.err
	}
	return r.rate, ctx.Err()
}
