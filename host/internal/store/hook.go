package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/berth-dev/berth/host/internal/job"
)

// HookEvent is a status hook event waiting for delivery.
type HookEvent struct {
	// Stats are the job's stats when the event happened.
	Stats *job.Stats
	// CheckIn is the message of a check-in event ("" for a status change).
	CheckIn string
	// Attempts counts the failed deliveries of this event so far.
	Attempts int
	// CheckInSeq numbers a check-in event among its run's check-ins.
	CheckInSeq int64
	raw        string
}

// Change is the body of the hook call: Harbor's StatusChange.
func (e *HookEvent) Change() *job.StatusChange {
	return &job.StatusChange{JobID: e.Stats.ID, Status: e.Stats.Status, CheckIn: e.CheckIn, Metadata: e.Stats}
}

// ClaimHook takes the next job with a due hook event and leases it for
// lease: no other deliverer gets the job's events until AckHook, FailHook
// or the lease's end. With nothing due it returns a nil event and when
// the next one is due (zero when none is queued).
func (s *Store) ClaimHook(ctx context.Context, lease time.Duration) (*HookEvent, time.Time, error) {
	now := s.now()
	res, err := s.run(ctx, scriptClaimHook, s.keys.HooksDue(), s.keys.HookAttempts(),
		now.UnixMilli(), lease.Milliseconds(), s.keys.HookEventsPrefix(), s.keys.StatsPrefix())
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("store: claim a hook event: %w", err)
	}
	if res[0] == "none" {
		if len(res) < 2 || res[1] == "" {
			return nil, time.Time{}, nil
		}
		ms, _ := strconv.ParseInt(res[1], 10, 64)
		return nil, time.UnixMilli(ms), nil
	}
	if len(res) != 4 {
		return nil, time.Time{}, fmt.Errorf("store: claim a hook event: unexpected reply %q", res)
	}
	ev, err := decodeHookEvent(res[2])
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("store: hook event of %s: %w", res[1], err)
	}
	ev.Attempts, _ = strconv.Atoi(res[3])
	return ev, time.Time{}, nil
}

func decodeHookEvent(raw string) (*HookEvent, error) {
	var e struct {
		S map[string]string `json:"s"`
		C string            `json:"c"`
	}
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return nil, err
	}
	r, err := parseMap(e.S)
	if err != nil {
		return nil, err
	}
	ev := &HookEvent{Stats: r.stats, CheckIn: e.C, raw: raw}
	if e.C != "" {
		ev.CheckInSeq, _ = strconv.ParseInt(e.S[fCheckInSeq], 10, 64)
	}
	return ev, nil
}

// AckHook records that the receiver accepted ev: the event leaves the
// queue and the job's ack moves forward.
func (s *Store) AckHook(ctx context.Context, ev *HookEvent) error {
	st := ev.Stats
	ack, _ := json.Marshal(job.Ack{Status: st.Status, Revision: st.Revision, CheckInAt: st.CheckInAt, CheckInSeq: ev.CheckInSeq})
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = scriptAckHook.DoContext(ctx, conn, s.keys.HooksDue(), s.keys.HookAttempts(), s.keys.HookEvents(st.ID), s.keys.Stats(st.ID),
		ev.raw, s.now().UnixMilli(), st.ID, string(ack), st.Revision, string(st.Status), st.CheckInAt, ev.CheckInSeq)
	if err != nil {
		return fmt.Errorf("store: ack hook event of %s: %w", st.ID, err)
	}
	return nil
}

// FailHook counts a failed delivery of ev and makes it due again after
// wait.
func (s *Store) FailHook(ctx context.Context, ev *HookEvent, wait time.Duration) error {
	return s.rescheduleHook(ctx, ev, wait, 1)
}

// DelayHook makes ev due again after wait without counting a failure (it
// was not tried).
func (s *Store) DelayHook(ctx context.Context, ev *HookEvent, wait time.Duration) error {
	return s.rescheduleHook(ctx, ev, wait, 0)
}

func (s *Store) rescheduleHook(ctx context.Context, ev *HookEvent, wait time.Duration, count int) error {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = scriptFailHook.DoContext(ctx, conn, s.keys.HooksDue(), s.keys.HookAttempts(), ev.Stats.ID, s.now().Add(wait).UnixMilli(), count)
	if err != nil {
		return fmt.Errorf("store: reschedule hook event of %s: %w", ev.Stats.ID, err)
	}
	return nil
}
