package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	gproto "google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/sdk/proto"
)

func TestDescribe(t *testing.T) {
	t.Parallel()
	schema := []byte(`{"type":"object"}`)
	jobs := map[string]Job{
		"ZETA":  NewJob(Spec{Run: func(*JobContext, []byte) error { return nil }}),
		"ALPHA": NewJob(Spec{MaxFails: 7, ShouldRetry: true, MaxConcurrency: 2, MaxSnoozes: 5, Version: "1.2.3", ParamsSchema: schema, Validates: true, Run: func(*JobContext, []byte) error { return nil }}),
		"MID":   NewJob(Spec{ShouldRetry: true, Run: func(*JobContext, []byte) error { return nil }}),
	}
	names, err := checkJobs(jobs)
	if err != nil {
		t.Fatal(err)
	}
	conf := []byte(`{"type":"object","properties":{"token":{"type":"string"}}}`)
	resp, err := newServer(jobs, names, Config{Schema: conf}).Describe(context.Background(), &proto.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &proto.DescribeResponse{Sdk: "go/" + Version, ConfigSchema: conf, Jobs: []*proto.JobType{
		{Name: "ALPHA", MaxFails: 7, ShouldRetry: true, MaxConcurrency: 2, MaxSnoozes: 5, Version: "1.2.3", ParamsSchema: schema, Validates: true},
		{Name: "MID", ShouldRetry: true},
		{Name: "ZETA"},
	}}
	if !gproto.Equal(resp, want) {
		t.Errorf("Describe =\n%v\nwant\n%v", resp, want)
	}
}

func TestConfigure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		apply     func(raw []byte) error // nil: no handler
		config    string
		wantError string
		wantGot   string // what apply was given
	}{
		{"NoHandlerTakesAnObject", nil, `{"token":"x"}`, "", ""},
		{"NoHandlerTakesAnything", nil, `not even JSON`, "", ""},
		{"Accepted", func([]byte) error { return nil }, `{"token":"x"}`, "", `{"token":"x"}`},
		{"EmptyIsTheEmptyObject", func([]byte) error { return nil }, ``, "", `{}`},
		{"Refused", func([]byte) error { return errors.New(`setting "token" is required`) }, `{}`, `setting "token" is required`, `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []byte
			conf := Config{}
			if tc.apply != nil {
				conf.Apply = func(raw []byte) error {
					got = raw
					return tc.apply(raw)
				}
			}
			s := newServer(map[string]Job{}, nil, conf)
			resp, err := s.Configure(context.Background(), &proto.ConfigureRequest{Config: []byte(tc.config)})
			if err != nil {
				t.Fatalf("Configure: %v (a refusal is an answer, not an RPC error)", err)
			}
			if resp.GetError() != tc.wantError {
				t.Errorf("error = %q, want %q", resp.GetError(), tc.wantError)
			}
			if string(got) != tc.wantGot {
				t.Errorf("the handler was given %q, want %q", got, tc.wantGot)
			}
		})
	}
}

func TestValidateRPC(t *testing.T) {
	t.Parallel()
	jobs := map[string]Job{
		"J": NewJob(Spec{Run: func(*JobContext, []byte) error { return nil }, Validate: func(p []byte) error {
			switch string(p) {
			case `{"panic":true}`:
				panic("boom")
			case `{"bad":true}`:
				return errors.New(`parameter "bad" must be false`)
			}
			return nil
		}}),
	}
	names, _ := checkJobs(jobs)
	s := newServer(jobs, names, Config{})
	tests := []struct {
		name, job, params, want string
	}{
		{"Valid", "J", `{}`, ""},
		{"Rejected", "J", `{"bad":true}`, `parameter "bad" must be false`},
		{"PanicIsAnError", "J", `{"panic":true}`, "Validate panicked: boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := s.Validate(context.Background(), &proto.ValidateRequest{JobName: tc.job, Parameters: []byte(tc.params)})
			if err != nil {
				t.Fatalf("Validate: %v (a rejection is an answer, not an RPC error)", err)
			}
			if resp.GetError() != tc.want {
				t.Errorf("error = %q, want %q", resp.GetError(), tc.want)
			}
		})
	}
	t.Run("UnknownJob", func(t *testing.T) {
		t.Parallel()
		_, err := s.Validate(context.Background(), &proto.ValidateRequest{JobName: "NOPE"})
		if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `"NOPE"`) {
			t.Errorf("Validate of an unknown job = %v, want NotFound naming it", err)
		}
	})
}

// errEmpty is an error with no message.
type errEmpty struct{}

func (errEmpty) Error() string { return "" }

func TestRunOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(jc *JobContext) error
		want *proto.Outcome
	}{
		{"Success", func(*JobContext) error { return nil },
			&proto.Outcome{Kind: proto.Outcome_KIND_SUCCESS}},
		{"SuccessWithOutput", func(jc *JobContext) error { return jc.SetOutput(map[string]int{"copied": 3}) },
			&proto.Outcome{Kind: proto.Outcome_KIND_SUCCESS, Output: []byte(`{"copied":3}`)}},
		{"LastOutputWins", func(jc *JobContext) error {
			_ = jc.SetOutput(1)
			return jc.SetOutput(2)
		}, &proto.Outcome{Kind: proto.Outcome_KIND_SUCCESS, Output: []byte(`2`)}},
		{"Error", func(*JobContext) error { return errors.New("registry unreachable") },
			&proto.Outcome{Kind: proto.Outcome_KIND_ERROR, Error: "registry unreachable"}},
		{"ErrorKeepsNoOutput", func(jc *JobContext) error {
			_ = jc.SetOutput("half")
			return errors.New("failed half way")
		}, &proto.Outcome{Kind: proto.Outcome_KIND_ERROR, Error: "failed half way"}},
		{"ErrorWithoutMessage", func(*JobContext) error { return errEmpty{} },
			&proto.Outcome{Kind: proto.Outcome_KIND_ERROR, Error: "the job returned an error with no message (core.errEmpty)"}},
		{"Permanent", func(*JobContext) error { return Permanent(errors.New("wrong password")) },
			&proto.Outcome{Kind: proto.Outcome_KIND_PERMANENT_ERROR, Error: "wrong password"}},
		{"PermanentWrapped", func(*JobContext) error { return fmt.Errorf("login: %w", Permanent(errors.New("wrong password"))) },
			&proto.Outcome{Kind: proto.Outcome_KIND_PERMANENT_ERROR, Error: "login: wrong password"}},
		{"PermanentNil", func(*JobContext) error { return Permanent(nil) },
			&proto.Outcome{Kind: proto.Outcome_KIND_PERMANENT_ERROR, Error: "permanent failure"}},
		{"Snooze", func(*JobContext) error { return Snooze(90*time.Second, "report not ready") },
			&proto.Outcome{Kind: proto.Outcome_KIND_SNOOZE, Error: "report not ready", SnoozeMillis: 90_000}},
		{"SnoozeAtLeastASecond", func(*JobContext) error { return Snooze(time.Millisecond, "") },
			&proto.Outcome{Kind: proto.Outcome_KIND_SNOOZE, SnoozeMillis: 1000}},
		{"SnoozeWrapped", func(*JobContext) error { return fmt.Errorf("later: %w", Snooze(2*time.Second, "rate limit")) },
			&proto.Outcome{Kind: proto.Outcome_KIND_SNOOZE, Error: "rate limit", SnoozeMillis: 2000}},
		{"Panic", func(*JobContext) error { panic("boom") },
			&proto.Outcome{Kind: proto.Outcome_KIND_ERROR, Error: "Run panicked: boom", Panicked: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error { return tc.run(jc) })})
			h.run("1", "J", "")
			got, msgs := h.outcome("1")
			tc.want.JobId = "1"
			if !gproto.Equal(got, tc.want) {
				t.Errorf("outcome = %v, want %v", got, tc.want)
			}
			if lines := logLines(msgs); tc.want.GetPanicked() {
				// The panic and its stack go to the job's log, at ERROR.
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "Run panicked: boom\n") || !strings.Contains(lines[0], "goroutine") ||
					msgs[0].GetLogs().GetEntries()[0].GetLevel() != proto.LogLevel_LOG_LEVEL_ERROR {
					t.Errorf("log of a panic: %v", msgs)
				}
			} else if len(lines) != 0 {
				t.Errorf("log = %q, want none", lines)
			}
		})
	}
}

// A run gets its ID, attempt, properties and parameters from its Start.
func TestStartGivesTheRunItsFacts(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, params []byte) error {
		region, ok := jc.Property("region")
		_, missing := jc.Property("missing")
		got <- fmt.Sprintf("%s %d %s %v %v %s", jc.JobID(), jc.Attempt(), region, ok, missing, params)
		return nil
	})})
	h.start(&proto.Start{JobId: "7", JobName: "J", Attempt: 3, Parameters: []byte(`{"n":1}`), Properties: map[string]string{"region": "eu"}})
	if g, w := receive(t, got, "the run"), `7 3 eu true false {"n":1}`; g != w {
		t.Errorf("the run saw %s, want %s", g, w)
	}
	h.outcome("7")
}

// A Start of a job ID that is running is refused with a permanent error
// and leaves the running one alone; so is a Start of a job the plugin does
// not serve.
func TestStartRefused(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 2)
	h := setup(t, map[string]Job{"WAIT": jobOf(func(jc *JobContext, _ []byte) error {
		entered <- struct{}{}
		if err := jc.Checkin("still here"); err != nil {
			return err
		}
		<-jc.Done()
		return errors.New("ended")
	})})
	h.run("X", "WAIT", "")
	receive(t, entered, "the first run")
	if ck := h.next().GetCheckin(); ck.GetJobId() != "X" {
		t.Fatalf("got %v, want X's check-in", ck)
	}

	h.run("X", "WAIT", "")
	want := &proto.Outcome{JobId: "X", Kind: proto.Outcome_KIND_PERMANENT_ERROR, Error: "sdk: job X is already running in this plugin"}
	if got := h.next().GetOutcome(); !gproto.Equal(got, want) {
		t.Errorf("outcome of the duplicate = %v, want %v", got, want)
	}
	h.run("Y", "NOPE", "")
	want = &proto.Outcome{JobId: "Y", Kind: proto.Outcome_KIND_PERMANENT_ERROR, Error: `sdk: this plugin does not serve job "NOPE"`}
	if got := h.next().GetOutcome(); !gproto.Equal(got, want) {
		t.Errorf("outcome of an unknown job = %v, want %v", got, want)
	}
	quiet(t, entered, "the duplicate running")

	// The first run still goes until it is stopped.
	h.stop("X", proto.StopReason_STOP_REASON_STOP)
	if got, _ := h.outcome("X"); got.GetError() != "ended" {
		t.Errorf("outcome of the first run = %v", got)
	}
	// Once it ended, the ID may run again.
	h.run("X", "WAIT", "")
	receive(t, entered, "the second run of X")
	h.stop("X", proto.StopReason_STOP_REASON_STOP)
	if got, _ := h.outcome("X"); got.GetError() != "ended" {
		t.Errorf("outcome of the second run = %v", got)
	}
}

// By the time its outcome is sent, a run's job ID is free: a host that
// starts it again as soon as it reads the outcome is not refused.
func TestOutcomeFreesTheJobID(t *testing.T) {
	t.Parallel()
	registered := make(chan bool, 1)
	h := setup(t, map[string]Job{"J": jobOf(func(*JobContext, []byte) error { return nil })})
	h.stream.onSend = func(m *proto.PluginMessage) {
		if m.GetOutcome() != nil {
			h.srv.mu.Lock()
			_, still := h.srv.runs[m.GetOutcome().GetJobId()]
			h.srv.mu.Unlock()
			registered <- still
		}
	}
	h.run("X", "J", "")
	if receive(t, registered, "the outcome") {
		t.Error("the run was still registered when its outcome was sent")
	}
	h.next()
}

// stopWatcher checks in "ready", waits for its context to end and reports
// the command and the cause it saw.
var stopWatcher = jobOf(func(jc *JobContext, _ []byte) error {
	if err := jc.Checkin("ready"); err != nil {
		return err
	}
	<-jc.Done()
	cmd, ok := jc.OPCommand()
	return fmt.Errorf("op=%q ok=%v err=%v cause=%v", cmd, ok, jc.Err(), context.Cause(jc))
})

func TestStop(t *testing.T) {
	t.Parallel()
	const (
		stop     = proto.StopReason_STOP_REASON_STOP
		cancel   = proto.StopReason_STOP_REASON_CANCEL
		shutdown = proto.StopReason_STOP_REASON_SHUTDOWN
		unspec   = proto.StopReason_STOP_REASON_UNSPECIFIED
	)
	tests := []struct {
		name    string
		reasons []proto.StopReason
		want    string
	}{
		{"Stop", []proto.StopReason{stop}, `op="stop" ok=true err=context canceled cause=` + ErrStopped.Error()},
		{"Cancel", []proto.StopReason{cancel}, `op="cancel" ok=true err=context canceled cause=` + ErrCancelled.Error()},
		{"Shutdown", []proto.StopReason{shutdown}, `op="" ok=false err=context canceled cause=` + ErrShutdown.Error()},
		{"UnspecifiedIsAStop", []proto.StopReason{unspec}, `op="stop" ok=true err=context canceled cause=` + ErrStopped.Error()},
		{"StopThenCancel", []proto.StopReason{stop, cancel}, `op="stop" ok=true err=context canceled cause=` + ErrStopped.Error()},
		{"CancelThenStop", []proto.StopReason{cancel, stop}, `op="cancel" ok=true err=context canceled cause=` + ErrCancelled.Error()},
		{"StopThenShutdown", []proto.StopReason{stop, shutdown}, `op="stop" ok=true err=context canceled cause=` + ErrStopped.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, map[string]Job{"J": stopWatcher})
			h.run("1", "J", "")
			h.next()
			// A stop of a job that does not run is ignored.
			h.stop("other", stop)
			for _, r := range tc.reasons {
				h.stop("1", r)
			}
			if got, _ := h.outcome("1"); got.GetError() != tc.want {
				t.Errorf("the job saw %s\nwant         %s", got.GetError(), tc.want)
			}
		})
	}
}

// Once the context ended for another reason (the host's shutdown, the
// deadline), a later stop changes nothing: OPCommand agrees with the
// cause.
func TestStopAfterTheContextEndedAgreesWithTheCause(t *testing.T) {
	t.Parallel()
	h := setup(t, map[string]Job{"J": stopWatcher})
	h.run("1", "J", "")
	h.next()
	h.stop("1", proto.StopReason_STOP_REASON_SHUTDOWN)
	h.stop("1", proto.StopReason_STOP_REASON_STOP)
	want := `op="" ok=false err=context canceled cause=` + ErrShutdown.Error()
	if got, _ := h.outcome("1"); got.GetError() != want {
		t.Errorf("the job saw %s\nwant         %s", got.GetError(), want)
	}
}

// A job that returns nil after it was told to end has not succeeded: the
// outcome is an error with the context's cause.
func TestEndedJobReturningNilFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		reason proto.StopReason
		want   error
	}{
		{"Stop", proto.StopReason_STOP_REASON_STOP, ErrStopped},
		{"Cancel", proto.StopReason_STOP_REASON_CANCEL, ErrCancelled},
		{"Shutdown", proto.StopReason_STOP_REASON_SHUTDOWN, ErrShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
				if err := jc.Checkin("ready"); err != nil {
					return err
				}
				<-jc.Done()
				return jc.SetOutput("done anyway")
			})})
			h.run("1", "J", "")
			h.next()
			h.stop("1", tc.reason)
			want := &proto.Outcome{JobId: "1", Kind: proto.Outcome_KIND_ERROR, Error: tc.want.Error()}
			if got, _ := h.outcome("1"); !gproto.Equal(got, want) {
				t.Errorf("outcome = %v, want %v", got, want)
			}
		})
	}
}

// A Start's deadline ends the run's context with ErrDeadline.
func TestDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   time.Duration
	}{
		{"Soon", 50 * time.Millisecond},
		{"Passed", -time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
				<-jc.Done()
				return fmt.Errorf("err=%v cause=%v", jc.Err(), context.Cause(jc))
			})})
			h.start(&proto.Start{JobId: "1", JobName: "J", DeadlineUnixMs: time.Now().Add(tc.in).UnixMilli()})
			want := "err=context deadline exceeded cause=" + ErrDeadline.Error()
			if got, _ := h.outcome("1"); got.GetError() != want {
				t.Errorf("the job saw %s, want %s", got.GetError(), want)
			}
		})
	}
	t.Run("StopBeforeTheDeadline", func(t *testing.T) {
		t.Parallel()
		h := setup(t, map[string]Job{"J": stopWatcher})
		h.start(&proto.Start{JobId: "1", JobName: "J", DeadlineUnixMs: time.Now().Add(time.Hour).UnixMilli()})
		h.next()
		h.stop("1", proto.StopReason_STOP_REASON_CANCEL)
		want := `op="cancel" ok=true err=context canceled cause=` + ErrCancelled.Error()
		if got, _ := h.outcome("1"); got.GetError() != want {
			t.Errorf("the job saw %s, want %s", got.GetError(), want)
		}
	})
}

// Many runs at once on one session each end with their own outcome.
func TestManyRuns(t *testing.T) {
	t.Parallel()
	const n = 50
	h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
		jc.Logger().Info(jc.JobID())
		if err := jc.Checkin(jc.JobID()); err != nil {
			return err
		}
		return jc.SetOutput(jc.JobID())
	})})
	for i := range n {
		h.run(fmt.Sprint(i), "J", "")
	}
	ended := map[string]string{}
	for len(ended) < n {
		switch x := h.next().GetMsg().(type) {
		case *proto.PluginMessage_Checkin:
			if x.Checkin.GetMessage() != x.Checkin.GetJobId() {
				t.Errorf("check-in %v", x.Checkin)
			}
		case *proto.PluginMessage_Logs:
			if e := x.Logs.GetEntries(); len(e) != 1 || e[0].GetMessage() != x.Logs.GetJobId() {
				t.Errorf("logs %v", x.Logs)
			}
		case *proto.PluginMessage_Outcome:
			ended[x.Outcome.GetJobId()] = string(x.Outcome.GetOutput())
		}
	}
	for id, out := range ended {
		if out != fmt.Sprintf("%q", id) {
			t.Errorf("run %s: output %s", id, out)
		}
	}
	h.srv.mu.Lock()
	left := len(h.srv.runs)
	h.srv.mu.Unlock()
	if left != 0 {
		t.Errorf("%d runs are still registered", left)
	}
}
