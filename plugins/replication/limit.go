package main

import (
	"context"
	"io"

	"golang.org/x/time/rate"
)

// limited reads r at most as fast as lim lets it (shared by every blob of
// a job, so the job as a whole keeps to its speed), reads at most burst
// bytes at a time, ends with ctx, and counts what it read.
type limited struct {
	ctx   context.Context
	r     io.Reader
	lim   *rate.Limiter // nil: no limit
	burst int
	n     int64
}

func (l *limited) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, context.Cause(l.ctx)
	}
	if l.lim != nil && len(p) > l.burst {
		p = p[:l.burst]
	}
	n, err := l.r.Read(p)
	if n > 0 && l.lim != nil {
		if werr := l.lim.WaitN(l.ctx, n); werr != nil {
			if l.ctx.Err() != nil {
				return 0, context.Cause(l.ctx)
			}
			return 0, werr // the wait would pass the job's deadline
		}
	}
	l.n += int64(n)
	return n, err
}
