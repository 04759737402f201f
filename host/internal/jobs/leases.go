package jobs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
)

// A job that runs holds a lease in Redis (store.Start takes it) for as
// long as its attempt is on this host: from its start until its outcome is
// recorded, through any wait for Redis. The keeper renews the leases of
// the attempts of this host together, one round trip per renewal, a third
// of the lease apart. A host that cannot renew a run's lease for most of
// the lease (Redis unreachable, the host paused) gives the run up, since
// another host may recover the job once the lease expires; a host that
// finds the lease lost (the job was recovered elsewhere) gives the run up
// at once. Either way the run ends at once (the plugin is told, as at a
// shutdown) and its outcome is not recorded. The reaper of any host
// recovers the jobs whose lease expired (RecoverLeases).

// keeper renews the leases of the attempts of this host. Its goroutine
// runs while there is a lease to keep.
type keeper struct {
	c *Controller

	mu      sync.Mutex
	held    map[string]*held
	running bool
	kick    chan struct{} // wakes the goroutine when the last lease goes
}

// held is the lease of one attempt.
type held struct {
	lease store.Lease
	// renewed is when the last renewal that succeeded was sent (the start,
	// at first): the lease in Redis lasts at least LeaseTTL from then.
	renewed  time.Time
	revoked  bool // the run was given up
	released bool
}

func newKeeper(c *Controller) *keeper {
	return &keeper{c: c, held: map[string]*held{}, kick: make(chan struct{}, 1)}
}

// giveUp is how long after its last renewal the host gives a run up: a
// little less than the lease, so that the run ends before another host
// can recover the job, clocks a little apart included.
func (k *keeper) giveUp() time.Duration {
	ttl := k.c.st.LeaseTTL()
	return ttl - ttl/6
}

// every is the time between renewals.
func (k *keeper) every() time.Duration { return k.c.st.LeaseTTL() / 3 }

// hold keeps the lease of an attempt that started (sent is when its start
// was sent to Redis) until release is called.
func (k *keeper) hold(id string, revision int64, sent time.Time) (release func()) {
	h := &held{lease: store.Lease{ID: id, Revision: revision}, renewed: sent}
	k.mu.Lock()
	k.held[id] = h
	start := !k.running
	k.running = true
	k.mu.Unlock()
	if start {
		go k.loop()
	}
	return func() {
		k.mu.Lock()
		h.released = true
		if k.held[id] == h {
			delete(k.held, id)
		}
		empty := len(k.held) == 0
		k.mu.Unlock()
		if empty {
			select {
			case k.kick <- struct{}{}:
			default:
			}
		}
	}
}

// RenewLeases renews this host's leases now rather than at the next tick,
// and gives up at once the runs whose lease is lost: a host calls it when
// the Redis primary moved, as the new primary may lack the starts this
// host made last (those jobs wait in its queue, for any host to run).
func (c *Controller) RenewLeases() {
	select {
	case c.leases.kick <- struct{}{}:
	default:
	}
}

// loop renews the leases until none is left.
func (k *keeper) loop() {
	t := k.c.clk.NewTimer(k.every())
	defer t.Stop()
	for {
		select {
		case <-t.C():
		case <-k.kick:
		}
		k.mu.Lock()
		if len(k.held) == 0 {
			k.running = false
			k.mu.Unlock()
			return
		}
		k.mu.Unlock()
		next := k.every()
		if !k.renew() {
			// Redis did not answer: try again sooner, the lease runs out.
			next = min(next, time.Second)
		}
		t.Stop()
		t.Reset(next)
	}
}

// renew renews every lease held, gives up the runs whose lease is lost or
// could not be renewed for too long, and answers whether Redis answered.
func (k *keeper) renew() bool {
	now := k.c.clk.Now()
	k.mu.Lock()
	var late []*held
	for _, h := range k.held {
		if !h.revoked && now.Sub(h.renewed) > k.giveUp() {
			h.revoked = true
			late = append(late, h)
		}
	}
	k.mu.Unlock()
	for _, h := range late {
		why := fmt.Sprintf("its lease was not renewed for %s (Redis unreachable or the host paused)", now.Sub(h.renewed).Round(time.Millisecond))
		if !k.c.opts.Runner.Revoke(h.lease.ID, why) {
			// The run is over: its outcome waits for Redis and keeps the
			// lease until it is recorded (or found lost).
			continue
		}
		k.c.log.Warn("the lease of a running job could not be renewed in time; this host gives its run up, and another host will run the job again",
			"job_id", h.lease.ID, "last_renewal", h.renewed.UTC(), "lease", k.c.st.LeaseTTL())
		// Given up: the lease is left to expire, so that the job is
		// recovered.
		k.mu.Lock()
		if k.held[h.lease.ID] == h {
			delete(k.held, h.lease.ID)
		}
		k.mu.Unlock()
	}
	k.mu.Lock()
	leases := make([]store.Lease, 0, len(k.held))
	for _, h := range k.held {
		leases = append(leases, h.lease)
	}
	k.mu.Unlock()
	if len(leases) == 0 {
		return true
	}

	ctx, cancel := context.WithTimeout(context.Background(), k.every())
	defer cancel()
	sent := k.c.clk.Now()
	lost, err := k.c.st.RenewLeases(ctx, leases)
	if err != nil {
		k.c.log.Warn("cannot renew the leases of the running jobs", "jobs", len(leases), "error", err)
		return false
	}
	gone := make(map[string]bool, len(lost))
	for _, id := range lost {
		gone[id] = true
	}
	var revoke []*held
	k.mu.Lock()
	for _, l := range leases {
		h := k.held[l.ID]
		if h == nil || h.lease != l {
			continue
		}
		if !gone[l.ID] {
			h.renewed = sent
			continue
		}
		// Lost: no more renewals; the attempt's handler still releases it.
		delete(k.held, l.ID)
		if !h.revoked {
			h.revoked = true
			revoke = append(revoke, h)
		}
	}
	k.mu.Unlock()
	for _, h := range revoke {
		if k.c.opts.Runner.Revoke(h.lease.ID, "its lease was lost: another host recovered the job") {
			k.c.log.Warn("this host lost the lease of a running job (another host recovered it); its run is given up",
				"job_id", h.lease.ID, "revision", h.lease.Revision)
		}
	}
	return true
}

// RecoverLeases queues again, in a new revision, the running jobs whose
// lease expired: their host died, paused, lost Redis for longer than a
// lease, or no longer runs them (it restarted, or gave its run up). A job
// asked to stop ends Stopped instead. It returns how many it recovered
// (the reaper calls it on every pass).
func (c *Controller) RecoverLeases(ctx context.Context) (int, error) {
	ids, err := c.st.ExpiredLeases(ctx, 1000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		res, err := c.st.RecoverLease(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return n, err
			}
			c.log.Warn("cannot recover a running job whose lease expired", "job_id", id, "error", err)
			continue
		}
		c.publish(res.Events)
		switch res.Outcome {
		case store.Moved:
			n++
			c.log.Warn("the lease of a running job expired; it is queued again", "job_id", id, "revision", res.Stats.Revision)
		case store.StoppedOnStart:
			n++
			c.log.Info("the lease of a running job asked to stop expired; it is Stopped", "job_id", id)
		}
	}
	return n, nil
}

// leaseLost is the log of an attempt given up for its lease.
func leaseLost(log lazyLog, why string) {
	log.Warn("the run was given up: "+why+"; its outcome is not recorded", "status", job.Running)
}
