package joblog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/loop"
)

// Manager ties the configured job log backends together for the host: it
// opens a job's logger on every backend, reads logs through one getter and
// runs the sweepers on a timer.
type Manager struct {
	backends   []Backend
	getter     Getter
	sweepers   []Sweeper
	sweepEvery time.Duration
	log        hclog.Logger
	loop       *loop.Loop
	losses     *losses
}

// NewManager returns a Manager over backends. getter serves Get and may be
// nil (Get then always reports ErrNotFound). sweepers run every sweepEvery
// once Start is called. log receives the manager's own messages; nil
// discards them.
func NewManager(backends []Backend, getter Getter, sweepers []Sweeper, sweepEvery time.Duration, log hclog.Logger) *Manager {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m := &Manager{
		backends:   append([]Backend(nil), backends...),
		getter:     getter,
		sweepers:   append([]Sweeper(nil), sweepers...),
		sweepEvery: sweepEvery,
		log:        log,
		losses:     newLosses(log, time.Now),
	}
	m.loop = loop.New(loop.Options{Run: func(ctx context.Context) time.Duration {
		m.sweepOnce(ctx)
		return m.sweepEvery
	}})
	return m
}

// Open returns a Logger that sends each entry to the job's logger on every
// backend. A backend that fails to open is logged and left out; Open fails
// only if every backend fails (or the ID is invalid). With no backend at
// all, the Logger discards everything.
func (m *Manager) Open(jobID string) (Logger, error) {
	if !job.ValidID(jobID) {
		return nil, badID(jobID)
	}
	if len(m.backends) == 0 {
		return nopLogger{}, nil
	}
	loggers := make([]Logger, 0, len(m.backends))
	var errs []error
	for _, b := range m.backends {
		l, err := b.Open(jobID)
		if err != nil {
			m.log.Error("cannot open job log backend", "backend", b.Name(), "job_id", jobID, "error", err)
			errs = append(errs, fmt.Errorf("%s: %w", b.Name(), err))
			continue
		}
		if f, ok := l.(failer); ok {
			l = &watched{Logger: l, f: f, jobID: jobID, backend: b.Name(), losses: m.losses}
		}
		loggers = append(loggers, l)
	}
	if len(loggers) == 0 {
		return nil, fmt.Errorf("joblog: open log of %s: every backend failed: %w", jobID, errors.Join(errs...))
	}
	return &multiLogger{loggers: loggers}, nil
}

// Get returns at most the last limit bytes of the job's log from the
// getter. It fails with ErrBadID for an invalid ID and with ErrNotFound
// when there is no getter or no stored log. When this host lost entries
// of the job (its storage refused them), a last WARNING entry says so and
// why, even when nothing of the log was kept.
func (m *Manager) Get(ctx context.Context, jobID string, limit int64) ([]byte, error) {
	if !job.ValidID(jobID) {
		return nil, badID(jobID)
	}
	var (
		b   []byte
		err error
	)
	if m.getter == nil {
		err = notFound(jobID)
	} else {
		b, err = m.getter.Get(ctx, jobID, limit)
	}
	why, lost := m.losses.reason(jobID)
	if !lost && m.losses.shared != nil && (err == nil || errors.Is(err, ErrNotFound)) {
		// Another host may have lost it.
		if r, ok, rerr := m.losses.shared.LogLoss(ctx, jobID); rerr == nil && ok {
			why, lost = r, true
		}
	}
	if lost && (err == nil || errors.Is(err, ErrNotFound)) {
		// Say so where the reader looks: after what was kept.
		note := appendEntry(nil, time.Now(), Warning, "berth: this log is incomplete: "+why)
		return append(b, note...), nil
	}
	return b, err
}

// ShareLosses makes the losses of job logs known to every host through r
// (call it before the first Open).
func (m *Manager) ShareLosses(r LossRecord) { m.losses.shared = r }

// HostLocal tells whether the logs read back are only this host's (the
// getter is FILE): a job that ran on another host has no log here.
func (m *Manager) HostLocal() bool {
	_, local := m.getter.(*File)
	return local
}

// Start runs every sweeper once at once and then every sweepEvery, in a
// goroutine of its own, until Stop. It returns at once. Calling it while
// the sweep loop runs does nothing; with no sweeper it starts nothing. It
// fails if there are sweepers but sweepEvery is not positive.
func (m *Manager) Start(ctx context.Context) error {
	if len(m.sweepers) == 0 {
		return nil
	}
	if m.sweepEvery <= 0 {
		return fmt.Errorf("joblog: sweep interval %v is not positive", m.sweepEvery)
	}
	m.loop.Start(ctx)
	return nil
}

// Stop ends the sweep loop and waits for it to return. It is safe to call
// more than once, and without Start.
func (m *Manager) Stop() { m.loop.Stop() }

func (m *Manager) sweepOnce(ctx context.Context) {
	for _, s := range m.sweepers {
		if ctx.Err() != nil {
			return
		}
		n, err := s.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Error("job log sweep failed", "removed", n, "error", err)
			continue
		}
		if n > 0 {
			m.log.Info("job logs swept", "removed", n)
		}
	}
}
