package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/testbed"
)

// pipe returns two framed ends of a loopback TCP connection; wrap (if
// set) wraps the dialing end's connection.
func pipe(t testing.TB, wrap func(net.Conn) net.Conn) (*Conn, *Conn) {
	t.Helper()
	return pipeLimits(t, wrap, Limits{})
}

// pipeLimits is pipe with the given limits on both ends.
func pipeLimits(t testing.TB, wrap func(net.Conn) net.Conn, lim Limits) (*Conn, *Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	a, err := Dialer{}.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-acc
	if wrap != nil {
		a = wrap(a)
	}
	ca, cb := NewConn(a, lim), NewConn(b, lim)
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

func randTensor(shape tensor.Shape) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape)
	for i := range t.F {
		t.F[i] = float32(i%977) * 0.25
	}
	return t
}

func TestTensorRoundTrip(t *testing.T) {
	a, b := pipe(t, nil)
	cases := []*tensor.Tensor{
		randTensor(tensor.Shape{1, 3, 5, 7}),
		randTensor(tensor.Shape{3 * ChunkSize / 4}), // exactly 3 chunks
		randTensor(tensor.Shape{ChunkSize/4 + 3}),
		tensor.New(tensor.Float32, tensor.Shape{0, 4}),
		tensor.FromInt64(tensor.Shape{3}, []int64{1, -2, 1 << 40}),
		{Shape: tensor.Shape{2}, DType: tensor.Bool, B: []bool{true, false}},
		randTensor(nil),
	}
	go func() {
		for i, c := range cases {
			if err := a.WriteTensor(7, i, c); err != nil {
				panic(err)
			}
		}
	}()
	for i, want := range cases {
		h, err := b.ReadHeader(time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if h.Kind != TensorHead || h.Req != 7 || int(h.Tag) != i {
			t.Fatalf("case %d: header %+v", i, h)
		}
		got, err := b.ReadTensorBody(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := tensor.AllClose(got, want, 0, 0); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
	}
}

func TestCorruptFrameDetected(t *testing.T) {
	a, b := pipe(t, nil)
	a.Fault = func(h *Header, p []byte) {
		if h.Kind == TensorData {
			p[5] ^= 0x10
		}
	}
	x := randTensor(tensor.Shape{100})
	go a.WriteTensor(1, 2, x)
	h, err := b.ReadHeader(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.ReadTensorBody(h)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want a CRC error", err)
	}
	x.F[1] = 0 // the hook corrupted the sender's own memory (a view)
}

func TestOversizedFrameRejected(t *testing.T) {
	a, b := pipe(t, nil)
	go a.WriteFrame(Header{Kind: Control}, make([]byte, DefaultMaxFrame+1))
	_, err := b.ReadHeader(time.Time{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	// A tensor head claiming more than the tensor bound is refused before
	// allocating.
	a2, b2 := pipe(t, nil)
	b2.lim.MaxTensor = 1 << 20
	go a2.WriteTensor(1, 0, randTensor(tensor.Shape{1 << 19}))
	h, err := b2.ReadHeader(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b2.ReadTensorBody(h); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

func TestReadDeadline(t *testing.T) {
	_, b := pipe(t, nil)
	b.lim.ReadTimeout = 50 * time.Millisecond
	t0 := time.Now()
	if _, err := b.ReadHeader(time.Time{}); err == nil {
		t.Fatal("read from a silent peer succeeded")
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("read took %v", d)
	}
}

// meshes starts n meshes on loopback listeners in this process.
func meshes(t testing.TB, n int, tlsFiles map[string]TLSFiles) []*Mesh {
	t.Helper()
	return meshesLatency(t, n, tlsFiles, 0)
}

// meshesLatency is meshes with MeshConfig.Latency set.
func meshesLatency(t testing.TB, n int, tlsFiles map[string]TLSFiles, lat time.Duration) []*Mesh {
	t.Helper()
	lns := make([]net.Listener, n)
	addrs := make([]string, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], addrs[i] = ln, ln.Addr().String()
		t.Cleanup(func() { ln.Close() })
	}
	ms := make([]*Mesh, n)
	for i := range ms {
		d := Dialer{}
		if tlsFiles != nil {
			cfg, err := tlsFiles[fmt.Sprint("dev", i)].Config()
			if err != nil {
				t.Fatal(err)
			}
			d.TLS = cfg
		}
		ms[i] = NewMesh(MeshConfig{Self: i, Addrs: addrs, Deployment: "d1", Dial: d.Dial, Latency: lat})
		t.Cleanup(ms[i].Close)
		go func() {
			for {
				nc, err := lns[i].Accept()
				if err != nil {
					return
				}
				go func() {
					nc, err := Accept(nc, d.TLS, 5*time.Second)
					if err != nil {
						return
					}
					c := NewConn(nc, Limits{})
					h, err := c.ReadHeader(time.Time{})
					if err != nil {
						c.Close()
						return
					}
					var hello PeerHello
					if err := c.ReadControl(h, &hello); err != nil {
						c.Close()
						return
					}
					ms[i].Accept(c, hello)
				}()
			}
		}()
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errs[i] = ms[i].Ensure(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return ms
}

func TestMeshAllToAll(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			var files map[string]TLSFiles
			if useTLS {
				var err error
				files, err = GenerateCerts(filepath.Join(t.TempDir(), "certs"), []string{"dev0", "dev1", "dev2"}, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
			}
			ms := meshes(t, 3, files)
			ctx := context.Background()
			for req := uint64(1); req <= 2; req++ {
				var wg sync.WaitGroup
				for i := range ms {
					wg.Add(1)
					go func() {
						defer wg.Done()
						tr := ms[i].Request(req)
						for j := range ms {
							if j != i {
								tr.Send(ctx, j, 10*i+j, randTensor(tensor.Shape{i + 1, j + 1, int(req)}))
							}
						}
						for j := range ms {
							if j == i {
								continue
							}
							got, err := tr.Recv(ctx, j, 10*j+i)
							if err != nil {
								t.Error(err)
								return
							}
							if err := tensor.AllClose(got, randTensor(tensor.Shape{j + 1, i + 1, int(req)}), 0, 0); err != nil {
								t.Error(err)
							}
						}
					}()
				}
				wg.Wait()
				for _, m := range ms {
					m.Finish(req)
				}
			}
		})
	}
}

// Small tensors go out from the sender's goroutine when its connection is
// idle (enqueue), larger ones through the connection's writer; mixed, every
// tensor still arrives whole, under its own tag.
func TestMeshMixedSizes(t *testing.T) {
	ms := meshes(t, 2, nil)
	ctx := context.Background()
	shape := func(k int) tensor.Shape {
		if k%3 == 0 {
			return tensor.Shape{512, 1024} // 2 MiB: queued
		}
		return tensor.Shape{k%7 + 1, 16} // small: inline when idle
	}
	const n = 60
	tr0, tr1 := ms[0].Request(1), ms[1].Request(1)
	go func() {
		for k := 0; k < n; k++ {
			if err := tr0.Send(ctx, 1, k, randTensor(shape(k))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for k := n - 1; k >= 0; k-- { // receive in the other order
		got, err := tr1.Recv(ctx, 0, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := tensor.AllClose(got, randTensor(shape(k)), 0, 0); err != nil {
			t.Fatalf("tensor %d: %v", k, err)
		}
	}
}

func TestMeshPeerDeath(t *testing.T) {
	ms := meshes(t, 2, nil)
	tr := ms[0].Request(1)
	done := make(chan error, 1)
	go func() {
		_, err := tr.Recv(context.Background(), 1, 3)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ms[1].Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Recv from a dead peer succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv from a dead peer hangs")
	}
}

// benchGoodput sends size-byte tensors over loopback and reports goodput.
func benchGoodput(b *testing.B, wrap func(net.Conn) net.Conn, size int, rate float64) {
	a, c := pipe(b, wrap)
	goodput(b, a, c, size, rate)
}

// goodput sends size-byte tensors from a to c and reports goodput (and its
// share of rate, if given).
func goodput(b *testing.B, a, c *Conn, size int, rate float64) {
	x := randTensor(tensor.Shape{size / 4})
	b.SetBytes(int64(size))
	b.ResetTimer()
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if err := a.WriteTensor(uint64(i), 0, x); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	t0 := time.Now()
	// Reuse one receive tensor: read the head, then the chunks into it.
	recv := tensor.New(tensor.Float32, x.Shape)
	for i := 0; i < b.N; i++ {
		h, err := c.ReadHeader(time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.ReadSmall(h); err != nil {
			b.Fatal(err)
		}
		if err := c.readTensorData(h, recv); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(t0)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	gp := float64(size) * float64(b.N) / el.Seconds()
	b.ReportMetric(gp/1e6, "MB/s")
	if rate > 0 {
		b.ReportMetric(gp/rate*100, "%rate")
	}
}

// BenchmarkGoodputLoopback is raw framed TCP on loopback, unshaped.
func BenchmarkGoodputLoopback(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) { benchGoodput(b, nil, size, 0) })
	}
}

// BenchmarkGoodputShaped is goodput through the in-process token-bucket
// shaper (loopback+token-bucket emulation) at 50 and 100 Mbit/s.
func BenchmarkGoodputShaped(b *testing.B) {
	for _, mbps := range []float64{50, 100} {
		rate := mbps * 1e6 / 8
		b.Run(fmt.Sprintf("%gMbps", mbps), func(b *testing.B) {
			benchGoodput(b, func(c net.Conn) net.Conn { return shaper.Wrap(c, rate) }, 1<<20, rate)
		})
	}
}

// BenchmarkGoodputTestbed is goodput between two network namespaces of the
// kernel testbed (netns+tc emulation: tbf on each device's link) at 50 and
// 100 Mbit/s. It needs root and the testbed's tools.
func BenchmarkGoodputTestbed(b *testing.B) {
	if err := testbed.Available(); err != nil {
		b.Skipf("testbed not available: %v", err)
	}
	for _, mbps := range []float64{50, 100} {
		rate := mbps * 1e6 / 8
		b.Run(fmt.Sprintf("%gMbps", mbps), func(b *testing.B) {
			bed, err := testbed.Up(context.Background(), testbed.Config{Devices: 2, Limits: testbed.Limits{Bandwidth: rate},
				Prefix: fmt.Sprintf("tr%d", os.Getpid()%100000)})
			if err != nil {
				b.Fatal(err)
			}
			defer bed.Down()
			ln, err := bed.Listen(1, "tcp4", bed.Devices[1].Addr+":0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			acc := make(chan net.Conn, 1)
			go func() {
				c, _ := ln.Accept()
				acc <- c
			}()
			nc, err := bed.Dial(context.Background(), 0, "tcp4", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			a, c := NewConn(nc, Limits{}), NewConn(<-acc, Limits{})
			defer a.Close()
			defer c.Close()
			goodput(b, a, c, 1<<20, rate)
		})
	}
}

// BenchmarkRawTCPLoopback is the ceiling the framed goodput is compared
// with: 1 MiB writes and reads on a loopback TCP connection, no framing,
// no CRC.
func BenchmarkRawTCPLoopback(b *testing.B) {
	a, c := pipe(b, nil)
	buf := make([]byte, 1<<20)
	rbuf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := a.nc.Write(buf); err != nil {
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		if _, err := io.ReadFull(c.nc, rbuf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWireIsLittleEndian pins the bytes on the wire, so machines of either
// byte order interoperate (run under qemu-s390x for the big-endian path).
func TestWireIsLittleEndian(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ca := NewConn(a, Limits{})
	go ca.WriteTensor(9, 4, tensor.FromFloat32(tensor.Shape{2}, []float32{1, -2}))
	raw := make([]byte, HeaderSize+24+HeaderSize+8)
	if _, err := io.ReadFull(b, raw); err != nil {
		t.Fatal(err)
	}
	head := raw[:HeaderSize]
	if string(head[:2]) != "IF" || head[3] != byte(TensorHead) || head[4] != 9 || head[12] != 4 || head[20] != 24 {
		t.Fatalf("head frame header % x", head)
	}
	data := raw[HeaderSize+24+HeaderSize:]
	want := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0} // 1.0, -2.0 little-endian
	if !bytes.Equal(data, want) {
		t.Fatalf("payload % x, want % x", data, want)
	}
}

// TestMeshLatency: with an emulated latency every tensor reaches Recv no
// earlier than the latency after it arrived, messages in flight together
// are held together (not one after another), and Send does not wait for
// it.
func TestMeshLatency(t *testing.T) {
	const lat = 30 * time.Millisecond
	ms := meshesLatency(t, 3, nil, lat)
	ctx := context.Background()
	start := time.Now()
	for _, from := range []int{1, 2} {
		for k := 0; k < 4; k++ {
			if err := ms[from].Request(1).Send(ctx, 0, k, randTensor(tensor.Shape{k + 1, 64})); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := time.Since(start); d > lat/2 {
		t.Errorf("8 sends took %v: Send waits for the latency", d)
	}
	for _, from := range []int{1, 2} {
		for k := 0; k < 4; k++ {
			got, err := ms[0].Request(1).Recv(ctx, from, k)
			if err != nil {
				t.Fatal(err)
			}
			if err := tensor.AllClose(got, randTensor(tensor.Shape{k + 1, 64}), 0, 0); err != nil {
				t.Fatalf("from %d tag %d: %v", from, k, err)
			}
			if d := time.Since(start); d < lat {
				t.Errorf("from %d tag %d received after %v, before the %v latency", from, k, d, lat)
			}
		}
	}
	if d := time.Since(start); d > 3*lat {
		t.Errorf("8 messages sent together took %v to receive, want about one %v latency", d, lat)
	}
}
