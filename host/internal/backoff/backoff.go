package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is how long to wait after n failures.
type Policy struct {
	// Base is the wait after the first failure; it doubles with each
	// further one.
	Base time.Duration
	// Max caps the doubled wait (before jitter); zero or less than Base
	// means Base.
	Max time.Duration
	// Jitter adds up to this fraction of the wait, at random (0 to 1; 0.25
	// waits between d and 1.25 d).
	Jitter float64
	// Rand returns a number in [0, 1) for the jitter (default
	// math/rand/v2's Float64); tests make it fixed.
	Rand func() float64
}

// Delay is the wait after n failures (n < 1 counts as 1): Base×2^(n-1),
// capped at Max, plus the jitter.
func (p Policy) Delay(n int) time.Duration {
	d := p.Doubled(n)
	if p.Jitter <= 0 || d <= 0 {
		return d
	}
	r := p.Rand
	if r == nil {
		r = rand.Float64
	}
	return d + time.Duration(float64(d)*min(p.Jitter, 1)*r())
}

// Doubled is Delay without the jitter.
func (p Policy) Doubled(n int) time.Duration {
	limit := max(p.Max, p.Base)
	d := p.Base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
