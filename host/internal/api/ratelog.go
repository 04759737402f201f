package api

import (
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// clientErrorsPerMinute bounds the refused requests logged per minute.
const clientErrorsPerMinute = 20

// rateLog logs refused requests, at most max per window; the ones past
// that are counted and reported in one line when the next window opens.
type rateLog struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu         sync.Mutex
	start      time.Time // of the current window
	logged     int       // in the current window
	suppressed int       // in the current window, past max
}

func newRateLog(max int, window time.Duration, now func() time.Time) *rateLog {
	if now == nil {
		now = time.Now
	}
	return &rateLog{max: max, window: window, now: now}
}

// log writes one refused request at INFO, unless the window's lines are
// used up.
func (l *rateLog) log(to hclog.Logger, method, path string, rep reply) {
	l.mu.Lock()
	now := l.now()
	var dropped int
	if now.Sub(l.start) >= l.window {
		dropped = l.suppressed
		l.start, l.logged, l.suppressed = now, 0, 0
	}
	write := l.logged < l.max
	if write {
		l.logged++
	} else {
		l.suppressed++
	}
	l.mu.Unlock()
	if dropped > 0 {
		to.Info("refused requests not logged: too many in a short time", "count", dropped, "window", l.window)
	}
	if write {
		to.Info("request refused", "method", method, "path", clip(path), "status", rep.status, "code", rep.code,
			"details", clip(rep.details))
	}
}
