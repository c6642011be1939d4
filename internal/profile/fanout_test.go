package profile

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/transport"
)

func TestShareArrivals(t *testing.T) {
	for _, tc := range []struct {
		w, want []float64
	}{
		{[]float64{1, 1, 1}, []float64{1, 1, 1}},
		// Shares 2:1:1 — the first message is through at 1/(2/4) = 2
		// (units of one message at the full link), the others have half
		// left and finish together at 2 + 0.5·2 = 3, the total.
		{[]float64{2, 1, 1}, []float64{2.0 / 3, 1, 1}},
		{[]float64{1, 3}, []float64{4.0 / 3 / 2, 1}},
	} {
		got := shareArrivals(tc.w)
		for i := range tc.want {
			if math.Abs(got[i]-tc.want[i]) > 1e-9 {
				t.Errorf("shareArrivals(%v) = %v, want %v", tc.w, got, tc.want)
				break
			}
		}
	}
}

func TestFitShareSpread(t *testing.T) {
	if s := FitShareSpread(1, 3); s != 0 {
		t.Errorf("messages arriving together: spread %g, want 0", s)
	}
	// The testbed's 0.65 and 0.89 of the last arrival (three peers).
	s := FitShareSpread((0.65+0.89)/2, 3)
	if s < 0.45 || s > 0.8 {
		t.Errorf("testbed fan-out: spread %g, want about 0.6", s)
	}
	if a, b := FitShareSpread(0.9, 3), FitShareSpread(0.7, 3); !(a < b) {
		t.Errorf("earlier arrivals fit a spread %g not above later ones' %g", b, a)
	}
	if FitShareSpread(0.5, 1) != 0 {
		t.Error("one peer has nothing to share")
	}
	early := earlyShare([][]int64{{100, 50, 75}, {10, 10, 10}})
	if want := (0.5 + 0.75 + 1 + 1) / 4; math.Abs(early-want) > 1e-9 {
		t.Errorf("earlyShare = %g, want %g", early, want)
	}
}

// Over loopback, shaped in process to one bucket: every round reaches
// every peer, no earlier than the bytes allow at the rate.
func TestMeasureFanout(t *testing.T) {
	s := agents(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rate := 20e6 / 8
	const bytes, rounds = 128 << 10, 3
	req := FanoutRequest{Peers: []string{s.Devices[1].Address, s.Devices[2].Address}, Bytes: bytes, Rounds: rounds, Rate: rate}
	r, err := MeasureFanout(ctx, Dialer{}, req, transport.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v, early share %.2f → spread %.2f", r, earlyShare(r.DoneNS), FitShareSpread(earlyShare(r.DoneNS), 2))
	if len(r.DoneNS) != rounds {
		t.Fatalf("%d rounds, want %d", len(r.DoneNS), rounds)
	}
	// Both tensors less the shaper's bucket, at the rate.
	floor := time.Duration((2*bytes - 64<<10) / rate * 0.9 * 1e9)
	for k, d := range r.DoneNS {
		last := time.Duration(max(d[0], d[1]))
		if len(d) != 2 || last < floor {
			t.Errorf("round %d: %v, the last no earlier than %v", k, d, floor)
		}
	}
	if _, err := MeasureFanout(ctx, Dialer{}, FanoutRequest{Peers: []string{s.Devices[1].Address}}, transport.Limits{}); err == nil {
		t.Error("no error for one peer")
	}
}
