package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// namespace is the bundle's namespace, without braces.
func (b *bundle) namespace() string {
	ns := b.keys.WorkNamespace()
	return ns[1 : len(ns)-1]
}

// host returns another Store on the bundle's namespace and clock, with its
// own pool: another host on the same Redis. mutate may change its options.
func (b *bundle) host(t *testing.T, mutate func(*Options)) *Store {
	t.Helper()
	now := b.now
	opts := Options{Namespace: b.namespace(), Now: func() time.Time { return time.Unix(*now, 0) },
		TTL: TTLs{Success: time.Hour, Stopped: 2 * time.Hour, Error: 3 * time.Hour}}
	if mutate != nil {
		mutate(&opts)
	}
	return New(redistest.Shared(t).Pool(t), opts)
}

// subscribe listens on channel; the subscription is confirmed when it
// returns.
func (b *bundle) subscribe(t *testing.T, channel string) *redis.PubSubConn {
	t.Helper()
	psc := &redis.PubSubConn{Conn: b.pool.Get()}
	t.Cleanup(func() { _ = psc.Close() })
	if err := psc.Subscribe(channel); err != nil {
		t.Fatalf("SUBSCRIBE %s: %v", channel, err)
	}
	if v, ok := psc.ReceiveWithTimeout(5 * time.Second).(redis.Subscription); !ok || v.Channel != channel {
		t.Fatalf("no confirmation of the subscription to %s: %#v", channel, v)
	}
	return psc
}

// published returns every message published on channel since psc
// subscribed to it, in order: it publishes an end marker and reads up to
// it, so that no message can be missed or read too early.
func (b *bundle) published(t *testing.T, psc *redis.PubSubConn, channel string) []string {
	t.Helper()
	const marker = "\x00end-of-test-messages"
	_, _ = b.do(t, "PUBLISH", channel, marker)
	var out []string
	for {
		switch v := psc.ReceiveWithTimeout(5 * time.Second).(type) {
		case redis.Message:
			if v.Channel != channel {
				t.Fatalf("message on channel %q, want %q", v.Channel, channel)
			}
			if string(v.Data) == marker {
				return out
			}
			out = append(out, string(v.Data))
		case error:
			t.Fatalf("receive on %s: %v (so far %q)", channel, v, out)
		default:
			t.Fatalf("unexpected pub/sub reply %#v", v)
		}
	}
}

// newPolicy stores an active periodic policy.
func (b *bundle) newPolicy(t *testing.T, mutate func(*job.Stats)) *job.Stats {
	t.Helper()
	p := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Periodic, Status: job.Scheduled,
		CronSpec: "0 */5 * * * *", EnqueueTime: *b.now, UpdateTime: *b.now, Revision: *b.now,
		WebHookURL: "http://core/hook/policy", NumericPolicyID: 42,
		Parameters: job.Parameters{"image": "demo", "n": 2.5}}
	p.RefLink = job.RefLink(p.ID)
	if mutate != nil {
		mutate(p)
	}
	if _, err := b.store.CreatePolicy(context.Background(), p); err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	return p
}

// fire creates the execution of p at t with s, which must create it.
func fire(t *testing.T, s *Store, p *job.Stats, at int64) string {
	t.Helper()
	out, _, err := s.CreateExecution(context.Background(), p, at)
	if err != nil || out != ExecutionCreated {
		t.Fatalf("CreateExecution(%d) = %v, %v; want ExecutionCreated", at, out, err)
	}
	return job.ExecutionID(p.ID, at)
}

// States a test can put a job in through the store's own operations.
const (
	inScheduled  = "Scheduled"
	inPending    = "Pending"
	inRunning    = "Running"
	inSuccess    = "Success"
	inStopped    = "Stopped"
	inFinalError = "FinalError"
	inErrorRetry = "ErrorWaitingForRetry"
)

// putIn brings job id, Scheduled (an execution) or Pending, to state as a
// host would: Requeue, Start, Move or Stop.
func putIn(t *testing.T, s *Store, id, state string) {
	t.Helper()
	ctx := context.Background()
	st, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status == job.Scheduled && state != inScheduled && state != inStopped {
		// It came due and a worker took it.
		c := s.Pool().Get()
		_, err := c.Do("ZREM", s.Keys().Scheduled(), mustEntry(t, st))
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	switch state {
	case inScheduled:
		if st.Status != job.Scheduled {
			t.Fatalf("%s is %s, cannot put it back in Scheduled", id, st.Status)
		}
		return
	case inPending:
		if st.Status == job.Pending {
			return
		}
		if r, err := s.Requeue(ctx, st); err != nil || r.Outcome != Moved {
			t.Fatalf("Requeue %s = %+v, %v", id, r, err)
		}
		return
	case inStopped:
		if out, _, err := s.Stop(ctx, st, job.ActionStop); err != nil || out != StopDone {
			t.Fatalf("Stop %s = %v, %v", id, out, err)
		}
		return
	}
	r, err := s.Start(ctx, id)
	if err != nil || r.Outcome != Moved {
		t.Fatalf("Start %s = %+v, %v", id, r, err)
	}
	var (
		to      job.Status
		retryAt int64
	)
	switch state {
	case inRunning:
		return
	case inSuccess:
		to = job.Success
	case inFinalError:
		to = job.Error
	case inErrorRetry:
		to, retryAt = job.Error, s.Now()+30
	default:
		t.Fatalf("unknown state %q", state)
	}
	if r, err := move(ctx, s, id, r.Stats.Revision, to, retryAt); err != nil || r.Outcome != Moved {
		t.Fatalf("Move %s to %s = %+v, %v", id, to, r, err)
	}
}

// move is a status change as the lifecycle owner asks for it; an Error
// with a retryAt waits for its retry, with its failed entry (fails 1, err
// "boom") in the retry set at retryAt.
func move(ctx context.Context, s *Store, id string, rev int64, to job.Status, retryAt int64) (Result, error) {
	c := Change{ID: id, Revision: rev, To: to, Reason: job.Succeeded}
	switch to {
	case job.Error:
		c.Reason = job.Failed
	case job.Stopped:
		c.Reason = job.StoppedByRequest
	}
	if retryAt > 0 {
		st, err := s.Get(ctx, id)
		if err != nil {
			return Result{}, err
		}
		e, err := entryOf(st)
		if err != nil {
			return Result{}, err
		}
		e.Fails, e.Err, e.FailedAt = 1, "boom", s.Now()
		c.Reason, c.RetryAt, c.Retry = job.RetryWait, retryAt, e
	}
	return s.Move(ctx, c)
}

// failedEntry is the entry move puts in the retry set for st.
func failedEntry(t *testing.T, s *Store, st *job.Stats) string {
	t.Helper()
	e, err := entryOf(st)
	if err != nil {
		t.Fatal(err)
	}
	e.Fails, e.Err, e.FailedAt = 1, "boom", s.Now()
	raw, err := e.bytes()
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// ended tells whether a job in state has ended for good.
func ended(state string) bool {
	return state == inSuccess || state == inStopped || state == inFinalError
}

// exists tells whether key exists.
func (b *bundle) exists(t *testing.T, key string) bool {
	t.Helper()
	n, _ := redis.Int(b.do(t, "EXISTS", key))
	return n == 1
}

// ttl is the TTL of key in seconds (-1: none, -2: no key).
func (b *bundle) ttl(t *testing.T, key string) int {
	t.Helper()
	n, _ := redis.Int(b.do(t, "TTL", key))
	return n
}

func ids(sts []*job.Stats) []string {
	out := make([]string, len(sts))
	for i, st := range sts {
		out[i] = st.ID
	}
	return out
}

// entryID is the job ID of a gocraft/work entry.
func entryID(t *testing.T, entry string) string {
	t.Helper()
	var w struct {
		ID   string         `json:"id"`
		Args map[string]any `json:"args"`
	}
	if err := json.Unmarshal([]byte(entry), &w); err != nil {
		t.Fatalf("entry %q is not JSON: %v", entry, err)
	}
	return JobIDOf(w.ID, w.Args)
}
