package joblog

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LossRecord keeps the losses of job logs where every host can read them
// (package store, in Redis).
type LossRecord interface {
	RecordLogLoss(ctx context.Context, jobID, reason string) error
	LogLoss(ctx context.Context, jobID string) (string, bool, error)
}

// failer is a Logger that can tell whether it has lost entries: it could
// not open or write its storage (a full or read-only disk, Redis gone).
type failer interface {
	// Failed returns the first error that lost an entry, nil while none
	// was lost.
	Failed() error
}

// maxLost bounds the jobs whose lost logs a Manager remembers.
const maxLost = 4096

// losses remembers, on this host, which jobs lost log entries and why, so
// that a read of their log says so, and warns the service log once per
// backend and cause (a disk that stays full does not flood it).
type losses struct {
	log hclog.Logger
	now func() time.Time
	// shared, when set, keeps each loss where every host can read it.
	shared LossRecord

	mu     sync.Mutex
	why    map[string]string // job ID -> reason
	order  []string          // job IDs, oldest first, for the bound
	warned map[string]bool   // backend + cause already warned about
	count  map[string]int    // jobs with losses, per backend
}

func newLosses(log hclog.Logger, now func() time.Time) *losses {
	return &losses{log: log, now: now, why: map[string]string{}, warned: map[string]bool{}, count: map[string]int{}}
}

// report records that the job's entries on backend are being lost.
func (l *losses) report(jobID, backend string, err error) {
	host, herr := os.Hostname()
	if herr != nil || host == "" {
		host = "(unknown)"
	}
	reason := fmt.Sprintf("the %s job logger could not write it on host %s at %s: %v",
		backend, host, l.now().UTC().Format(timeLayout), err)
	cause := backend + "\x00" + causeOf(err)
	l.mu.Lock()
	if _, seen := l.why[jobID]; !seen {
		l.order = append(l.order, jobID)
		if len(l.order) > maxLost {
			delete(l.why, l.order[0])
			l.order = l.order[1:]
		}
		l.why[jobID] = reason
	}
	l.count[backend]++
	first := !l.warned[cause]
	l.warned[cause] = true
	shared := l.shared
	l.mu.Unlock()
	if shared != nil {
		// Off the job's path: the job must not wait for Redis here.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := shared.RecordLogLoss(ctx, jobID, reason); err != nil {
				l.log.Debug("cannot record a log loss for the other hosts", "job_id", jobID, "error", err)
			}
		}()
	}
	if first {
		l.log.Warn("job log entries are being lost; the jobs still run, and reading such a log says it is incomplete "+
			"(further losses of this cause are not logged)", "backend", backend, "job_id", jobID, "error", err)
	}
}

// reason says why the job's log is incomplete, if it is.
func (l *losses) reason(jobID string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.why[jobID]
	return r, ok
}

// causeOf is the part of err that names its cause (the errno of a path
// error), so that one full disk is one warning, not one per job.
func causeOf(err error) string {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err.Error()
		}
		err = u.Unwrap()
	}
}

// watched is one backend's logger of a job, whose first loss is reported.
type watched struct {
	Logger
	f        failer
	jobID    string
	backend  string
	losses   *losses
	reported bool // under mu
	mu       sync.Mutex
}

func (w *watched) Log(level Level, msg string) {
	w.Logger.Log(level, msg)
	w.check()
}

func (w *watched) Close() error {
	err := w.Logger.Close()
	w.check()
	return err
}

func (w *watched) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reported {
		return
	}
	if err := w.f.Failed(); err != nil {
		w.reported = true
		w.losses.report(w.jobID, w.backend, err)
	}
}
