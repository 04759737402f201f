package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	half := func() float64 { return 0.5 }
	tests := []struct {
		name string
		p    Policy
		n    int
		want time.Duration
	}{
		{"First", Policy{Base: time.Second, Max: time.Minute}, 1, time.Second},
		{"ZeroCountsAsOne", Policy{Base: time.Second, Max: time.Minute}, 0, time.Second},
		{"Doubles", Policy{Base: time.Second, Max: time.Minute}, 4, 8 * time.Second},
		{"Capped", Policy{Base: time.Second, Max: 10 * time.Second}, 5, 10 * time.Second},
		{"CapBelowBaseIsBase", Policy{Base: time.Second, Max: time.Millisecond}, 3, time.Second},
		{"NoOverflow", Policy{Base: time.Second, Max: time.Hour}, 1 << 20, time.Hour},
		{"JitterAdds", Policy{Base: time.Second, Max: time.Minute, Jitter: 0.25, Rand: half}, 2, 2*time.Second + 250*time.Millisecond},
		{"JitterAfterTheCap", Policy{Base: time.Second, Max: 4 * time.Second, Jitter: 0.5, Rand: half}, 9, 5 * time.Second},
		{"JitterAboveOneIsOne", Policy{Base: time.Second, Jitter: 3, Rand: half}, 1, 1500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.p.Delay(tc.n); got != tc.want {
				t.Fatalf("Delay(%d) = %v, want %v", tc.n, got, tc.want)
			}
		})
	}
}

func TestDefaultJitterStaysInRange(t *testing.T) {
	t.Parallel()
	p := Policy{Base: time.Second, Max: time.Minute, Jitter: 0.25}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Delay(3)
		if d < 4*time.Second || d > 5*time.Second {
			t.Fatalf("Delay(3) = %v, want within [4s, 5s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatal("the jitter never varies")
	}
}
