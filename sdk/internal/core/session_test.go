package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/sdk/proto"
)

// Two runs on one session, each logging and checking in three times: their
// messages interleave on the stream, and each carries its own job ID and
// keeps its order.
func TestSessionInterleavesRuns(t *testing.T) {
	t.Parallel()
	var both sync.WaitGroup
	both.Add(2)
	h := setup(t, map[string]Job{"STEPS": jobOf(func(jc *JobContext, _ []byte) error {
		for i := 1; i <= 3; i++ {
			jc.Logger().Info(fmt.Sprintf("%s logs %d", jc.JobID(), i))
			if err := jc.Checkin(fmt.Sprintf("%s %d", jc.JobID(), i)); err != nil {
				return err
			}
			if i == 1 { // both runs are in flight before either goes on
				both.Done()
				both.Wait()
			}
		}
		return nil
	})})
	h.run("A", "STEPS", "")
	h.run("B", "STEPS", "")

	events := map[string][]string{}
	var order []string
	for ended := 0; ended < 2; {
		m := h.next()
		switch x := m.GetMsg().(type) {
		case *proto.PluginMessage_Logs:
			for _, e := range x.Logs.GetEntries() {
				events[x.Logs.GetJobId()] = append(events[x.Logs.GetJobId()], "log "+e.GetMessage())
			}
			order = append(order, x.Logs.GetJobId())
		case *proto.PluginMessage_Checkin:
			id := x.Checkin.GetJobId()
			events[id] = append(events[id], "checkin "+x.Checkin.GetMessage())
			order = append(order, id)
		case *proto.PluginMessage_Outcome:
			id := x.Outcome.GetJobId()
			events[id] = append(events[id], "outcome "+x.Outcome.GetKind().String())
			order = append(order, id)
			ended++
		default:
			t.Fatalf("unexpected message %v", m)
		}
	}
	for _, id := range []string{"A", "B"} {
		want := []string{"log " + id + " logs 1", "checkin " + id + " 1", "log " + id + " logs 2", "checkin " + id + " 2",
			"log " + id + " logs 3", "checkin " + id + " 3", "outcome KIND_SUCCESS"}
		if !slices.Equal(events[id], want) {
			t.Errorf("run %s sent\n%q\nwant\n%q", id, events[id], want)
		}
	}
	// The first four messages (a batch of lines and a check-in each) came
	// from both runs.
	if first := order[:4]; !slices.Contains(first, "A") || !slices.Contains(first, "B") {
		t.Errorf("the runs did not interleave: %q", order)
	}
}

// A check-in does not wait for the host: it returns once it is on the
// stream, before the host has read it, and check-ins from two goroutines
// of a job all arrive.
func TestCheckinDoesNotWait(t *testing.T) {
	t.Parallel()
	returned := make(chan error, 3)
	h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
		returned <- jc.Checkin("one")
		var wg sync.WaitGroup
		for _, msg := range []string{"left", "right"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				returned <- jc.Checkin(msg)
			}()
		}
		wg.Wait()
		return nil
	})})
	h.run("1", "J", "")
	for range 3 {
		if err := receive(t, returned, "Checkin to return"); err != nil {
			t.Fatalf("Checkin = %v", err)
		}
	}
	var got []string
	for range 3 {
		got = append(got, h.next().GetCheckin().GetMessage())
	}
	if got[0] != "one" || !slices.Contains(got, "left") || !slices.Contains(got, "right") {
		t.Errorf("check-ins %q, want one, then left and right", got)
	}
	if out, _ := h.outcome("1"); out.GetKind() != proto.Outcome_KIND_SUCCESS {
		t.Errorf("outcome = %v", out)
	}
}

// Lines logged before a check-in or a launch reach the stream before it,
// however many batches they take; lines logged before Run returns reach
// it before the outcome.
func TestLinesGoBeforeWhatFollowsThem(t *testing.T) {
	t.Parallel()
	const n = 2*maxBatchEntries + 10
	h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
		for i := range n {
			jc.Logger().Info(fmt.Sprintf("before check-in %d", i))
		}
		if err := jc.Checkin("check-in"); err != nil {
			return err
		}
		jc.Logger().Info("before launch")
		if _, err := jc.LaunchJob(JobRequest{Name: "SUB"}); err != nil {
			return err
		}
		jc.Logger().Info("last")
		return nil
	})})
	h.run("1", "J", "")
	out, msgs := h.outcome("1")
	if out.GetKind() != proto.Outcome_KIND_SUCCESS {
		t.Fatalf("outcome = %v", out)
	}
	var got []string
	for _, m := range msgs {
		switch x := m.GetMsg().(type) {
		case *proto.PluginMessage_Checkin:
			got = append(got, "CHECKIN")
		case *proto.PluginMessage_Launch:
			got = append(got, "LAUNCH")
		case *proto.PluginMessage_Logs:
			if len(x.Logs.GetEntries()) > maxBatchEntries {
				t.Errorf("a batch of %d entries", len(x.Logs.GetEntries()))
			}
			for _, e := range x.Logs.GetEntries() {
				got = append(got, e.GetMessage())
			}
		}
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("before check-in %d", i))
	}
	want = append(want, "CHECKIN", "before launch", "LAUNCH", "last")
	if !slices.Equal(got, want) {
		t.Errorf("the stream carried %d items, want %d in this order: lines, CHECKIN, line, LAUNCH, line", len(got), len(want))
	}
}

// Each launch gets the answer of its own request ID, even when the host
// answers two concurrent launches in the other order.
func TestLaunchGetsItsOwnAnswer(t *testing.T) {
	t.Parallel()
	got := make(chan string, 2)
	h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
		done := make(chan struct{}, 2)
		for _, name := range []string{"LEFT", "RIGHT"} {
			go func() {
				defer func() { done <- struct{}{} }()
				id, err := jc.LaunchJob(JobRequest{Name: name})
				got <- fmt.Sprintf("%s=%s %v", name, id, err)
			}()
		}
		<-done
		<-done
		return nil
	})})
	h.run("1", "J", "")
	first, second := h.next().GetLaunch(), h.next().GetLaunch()
	if first.GetRequestId() == second.GetRequestId() {
		t.Fatalf("two launches share request ID %d", first.GetRequestId())
	}
	nameOf := func(l *proto.Launch) string {
		if strings.Contains(string(l.GetRequest()), `"LEFT"`) {
			return "LEFT"
		}
		return "RIGHT"
	}
	h.launched(second, "id-of-"+nameOf(second), "")
	if g, w := receive(t, got, "the second launch"), nameOf(second)+"=id-of-"+nameOf(second)+" <nil>"; g != w {
		t.Errorf("answered second: %s, want %s", g, w)
	}
	quiet(t, got, "the first launch returning before its answer")
	h.launched(first, "id-of-"+nameOf(first), "")
	if g, w := receive(t, got, "the first launch"), nameOf(first)+"=id-of-"+nameOf(first)+" <nil>"; g != w {
		t.Errorf("answered first: %s, want %s", g, w)
	}
	h.outcome("1")
}

// A launch's answer can refuse it, or be of no use.
func TestLaunchAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		stats string
		err   string
		want  string
	}{
		{"Launched", `{"id":"sub1","status":"Pending"}`, "", "sub1 <nil>"},
		{"Refused", "", "no such job type", " sdk: launch sub-job SUB: no such job type"},
		{"StatsWithoutID", `{"status":"Pending"}`, "", ` sdk: launch sub-job SUB: the host answered stats without an id: "{\"status\":\"Pending\"}"`},
		{"StatsNotJSON", `nope`, "", ` sdk: launch sub-job SUB: the host answered stats without an id: "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 1)
			h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
				id, err := jc.LaunchJob(JobRequest{Name: "SUB"})
				got <- fmt.Sprintf("%s %v", id, err)
				return nil
			})})
			h.run("1", "J", "")
			l := h.next().GetLaunch()
			h.send(&proto.HostMessage{Msg: &proto.HostMessage_LaunchResult{LaunchResult: &proto.LaunchResult{
				JobId: "1", RequestId: l.GetRequestId(), Stats: []byte(tc.stats), Error: tc.err}}})
			if g := receive(t, got, "LaunchJob"); g != tc.want {
				t.Errorf("LaunchJob = %q, want %q", g, tc.want)
			}
			h.outcome("1")
		})
	}
}

// When the host closes the session, every run's context ends with
// ErrHostGone, and launches waiting for an answer return.
func TestHostClosingTheSessionEndsEveryRun(t *testing.T) {
	t.Parallel()
	type seen struct{ call, cause error }
	got := make(chan seen, 3)
	waiting := make(chan struct{}, 3)
	h := setup(t, map[string]Job{
		"CHECKIN": jobOf(func(jc *JobContext, _ []byte) error {
			err := jc.Checkin("sent")
			<-jc.Done()
			got <- seen{err, context.Cause(jc)}
			return nil
		}),
		"LAUNCH": jobOf(func(jc *JobContext, _ []byte) error {
			_, err := jc.LaunchJob(JobRequest{Name: "SUB"})
			<-jc.Done()
			got <- seen{err, context.Cause(jc)}
			return nil
		}),
		"WAIT": jobOf(func(jc *JobContext, _ []byte) error {
			waiting <- struct{}{}
			<-jc.Done()
			got <- seen{nil, context.Cause(jc)}
			return nil
		}),
	})
	for _, name := range []string{"CHECKIN", "LAUNCH", "WAIT"} {
		h.run(name, name, "")
	}
	receive(t, waiting, "WAIT to run")
	for range 2 { // the check-in and the launch
		if m := h.next(); m.GetCheckin() == nil && m.GetLaunch() == nil {
			t.Fatalf("unexpected message %v", m)
		}
	}
	h.closeSession()
	for range 3 {
		s := receive(t, got, "a run to see the end of the session")
		if !errors.Is(s.cause, ErrHostGone) {
			t.Errorf("context.Cause = %v, want %v", s.cause, ErrHostGone)
		}
		if s.call != nil && !errors.Is(s.call, errClosed) && !errors.Is(s.call, ErrHostGone) {
			t.Errorf("a waiting call returned %v, want the session's end", s.call)
		}
	}
	receive(t, h.done, "Session to return")
}

// A launch that fails because the host closed the session finds the run's
// context ended already, so that a job checking ctx.Err() on an error
// stops. The window was small: under -race about one session in fifty
// showed it.
func TestCallsFailingForTheSessionsEndFindTheContextEnded(t *testing.T) {
	t.Parallel()
	for i := range 300 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got := make(chan error, 1)
			h := setup(t, map[string]Job{"LAUNCH": jobOf(func(jc *JobContext, _ []byte) error {
				_, err := jc.LaunchJob(JobRequest{Name: "SUB"})
				got <- jc.Err()
				return err
			})})
			h.run("1", "LAUNCH", "")
			h.next()
			h.closeSession()
			if err := receive(t, got, "the launch to return"); err == nil {
				t.Fatal("LaunchJob failed for the session's end while the context still ran")
			}
		})
		if t.Failed() {
			return
		}
	}
}
