package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/jobs"
	"github.com/berth-dev/berth/host/internal/pubsub"
	"github.com/berth-dev/berth/host/internal/store"
)

// startFence is how long starts wait after the primary moved: longer than
// it takes every other host to learn of the move (the Sentinel monitor
// asks every 250 ms), renew its leases and end the runs the new primary
// does not know, so that no job runs on two hosts at once.
const startFence = 1500 * time.Millisecond

// failover is what a host does when the Sentinel primary moved: what the
// old primary took last may be missing from the new one.
type failover struct {
	store    *store.Store
	jobs     *jobs.Controller
	listener *pubsub.Listener
	log      hclog.Logger
	// again is when the journal is replayed a second time, for the
	// creations that were under way on the old primary at the change.
	again time.Duration

	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

func newFailover(st *store.Store, j *jobs.Controller, l *pubsub.Listener, log hclog.Logger) *failover {
	ctx, cancel := context.WithCancel(context.Background())
	return &failover{store: st, jobs: j, listener: l, log: log, again: 2 * time.Second, ctx: ctx, cancel: cancel}
}

// changed is redisx.Backend.OnPrimaryChange's callback: it returns at
// once and does the work on its own goroutine.
//   - starts wait for startFence (before this returns: the host is about
//     to use the new primary);
//   - the pub/sub connection moves to the new primary (stop requests and
//     doorbells published there would not reach the old one);
//   - the leases are renewed now, so that a run whose start the new
//     primary lacks is given up at once rather than at the next renewal;
//   - the jobs and policies created in the last store.JournalFor that the
//     new primary lacks are made again, now and once more a little later.
func (f *failover) changed(from, to string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.jobs.HoldStarts(startFence)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.listener.Reconnect()
		f.jobs.RenewLeases()
		f.replay(from, to)
		select {
		case <-time.After(f.again):
			f.replay(from, to)
		case <-f.ctx.Done():
		}
	}()
}

func (f *failover) replay(from, to string) {
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	made, err := f.store.Replay(ctx)
	if len(made) > 0 {
		f.log.Warn("the new Redis primary lacked jobs this host had accepted shortly before the failover; they are submitted again",
			"from", from, "to", to, "jobs", len(made), "job_ids", made[:min(len(made), 20)])
	}
	if err != nil {
		f.log.Error("after the Redis failover, some jobs this host accepted could not be submitted again", "from", from, "to", to, "error", err)
	}
}

// stop ends the replays under way.
func (f *failover) stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
}
