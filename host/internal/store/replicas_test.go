package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// With ReplicaAcks, a change counts only once that many replicas hold it:
// a primary with one replica in sync confirms one, and a change that asks
// for more than there are fails with a *NotReplicatedError, the job being
// on the primary (safe to make again).
func TestChangesWaitForTheirReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.WithReplicaOf(primary))
	// Wait until the replica is in sync.
	rp := replica.Pool(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := rp.Get()
		info, err := redis.String(c.Do("INFO", "replication"))
		c.Close()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not sync: %v %s", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	newJob := func() *job.Stats {
		st := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending,
			EnqueueTime: 1, UpdateTime: 1, Revision: 1, Parameters: job.Parameters{"image": "demo"}}
		st.RefLink = job.RefLink(st.ID)
		return st
	}
	ns := primary.Namespace(t)
	one := New(primary.Pool(t), Options{Namespace: ns, ReplicaAcks: 1, ReplicaTimeout: 2 * time.Second})
	st := newJob()
	if _, err := one.Create(ctx, st); err != nil {
		t.Fatalf("Create waiting for the one replica: %v", err)
	}
	// The replica holds it once the change counted.
	c := rp.Get()
	n, err := redis.Int(c.Do("EXISTS", one.Keys().Stats(st.ID)))
	c.Close()
	if err != nil || n != 1 {
		t.Fatalf("the replica lacks the job the primary confirmed: %d, %v", n, err)
	}

	two := New(primary.Pool(t), Options{Namespace: ns, ReplicaAcks: 2, ReplicaTimeout: 200 * time.Millisecond})
	_, err = two.Create(ctx, newJob())
	var nr *NotReplicatedError
	if !errors.As(err, &nr) || nr.Want != 2 || nr.Got != 1 || !Transient(err) {
		t.Fatalf("Create waiting for two replicas of one = %v; want a transient NotReplicatedError 1 of 2", err)
	}
}
