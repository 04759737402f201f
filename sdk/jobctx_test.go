package sdk

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/sdk/proto"
)

// fakeBridge is a host that records the calls a job makes, in order.
type fakeBridge struct {
	checkinErr  error
	launchStats []byte
	launchErr   error

	mu       sync.Mutex
	calls    []string
	requests [][]byte
	// logNoDeadline counts log calls whose context had no deadline.
	logNoDeadline int
}

func (b *fakeBridge) checkin(_ context.Context, jobID, message string) error {
	b.record("checkin " + jobID + ": " + message)
	return b.checkinErr
}

func (b *fakeBridge) log(ctx context.Context, jobID string, entries []*proto.LogEntry) error {
	// A gRPC call on an ended context fails without reaching the host.
	if err := ctx.Err(); err != nil {
		return err
	}
	_, ok := ctx.Deadline()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !ok {
		b.logNoDeadline++
	}
	for _, e := range entries {
		b.calls = append(b.calls, "log "+jobID+": "+e.GetMessage())
	}
	return nil
}

func (b *fakeBridge) launch(_ context.Context, jobID string, request []byte) ([]byte, error) {
	b.mu.Lock()
	b.requests = append(b.requests, request)
	b.mu.Unlock()
	b.record("launch " + jobID)
	return b.launchStats, b.launchErr
}

func (b *fakeBridge) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *fakeBridge) recorded() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// newTestJobContext returns the context of job "J1" over b, finished when
// the test ends.
func newTestJobContext(t *testing.T, b bridge, props map[string]string) *jobContext {
	t.Helper()
	jc := newJobContext(context.Background(), "J1", props, b)
	t.Cleanup(jc.finish)
	return jc
}

func TestJobContextCheckin(t *testing.T) {
	t.Parallel()

	t.Run("FlushesLogsFirst", func(t *testing.T) {
		t.Parallel()
		b := &fakeBridge{}
		jc := newTestJobContext(t, b, nil)
		jc.Logger().Info("one")
		jc.Logger().Warn("two")
		if err := jc.Checkin("half way"); err != nil {
			t.Fatal(err)
		}
		want := []string{"log J1: one", "log J1: two", "checkin J1: half way"}
		if got := b.recorded(); !slices.Equal(got, want) {
			t.Errorf("host saw %q, want %q", got, want)
		}
	})

	t.Run("WrapsError", func(t *testing.T) {
		t.Parallel()
		errHost := errors.New("host unavailable")
		jc := newTestJobContext(t, &fakeBridge{checkinErr: errHost}, nil)
		err := jc.Checkin("half way")
		if !errors.Is(err, errHost) {
			t.Fatalf("Checkin = %v, want it to wrap %v", err, errHost)
		}
		if !strings.Contains(err.Error(), `"half way"`) {
			t.Errorf("Checkin error %q does not name the message", err)
		}
	})
}

func TestJobContextSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		signals   []OPCommand
		wantCmd   OPCommand
		wantCause error
	}{
		{"Stop", []OPCommand{OPStop}, OPStop, errStopped},
		{"Cancel", []OPCommand{OPCancel}, OPCancel, errCancelled},
		{"StopThenCancel", []OPCommand{OPStop, OPCancel}, OPStop, errStopped},
		{"CancelThenStop", []OPCommand{OPCancel, OPStop}, OPCancel, errCancelled},
		{"StopTwice", []OPCommand{OPStop, OPStop}, OPStop, errStopped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			jc := newTestJobContext(t, &fakeBridge{}, nil)
			if cmd, ok := jc.OPCommand(); ok {
				t.Fatalf("OPCommand before any signal = %q, true", cmd)
			}
			if err := jc.Err(); err != nil {
				t.Fatalf("Err before any signal = %v", err)
			}
			for _, cmd := range tc.signals {
				jc.signal(cmd)
			}
			receive(t, jc.Done(), "the context to end")
			if cmd, ok := jc.OPCommand(); !ok || cmd != tc.wantCmd {
				t.Errorf("OPCommand = %q, %v; want %q, true", cmd, ok, tc.wantCmd)
			}
			if err := context.Cause(jc); err != tc.wantCause {
				t.Errorf("context.Cause = %v, want %v", err, tc.wantCause)
			}
			if err := jc.Err(); err != context.Canceled {
				t.Errorf("Err = %v, want %v", err, context.Canceled)
			}
		})
	}
}

// Whatever the interleaving of a stop and a cancel, the command the job
// reads and the cause of its context's end agree.
func TestJobContextConcurrentSignalsAgree(t *testing.T) {
	t.Parallel()
	for range 2000 {
		jc := newJobContext(context.Background(), "J1", nil, &fakeBridge{})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, cmd := range []OPCommand{OPStop, OPCancel} {
			wg.Go(func() {
				<-start
				jc.signal(cmd)
			})
		}
		close(start)
		wg.Wait()
		cmd, _ := jc.OPCommand()
		want := map[OPCommand]error{OPStop: errStopped, OPCancel: errCancelled}[cmd]
		cause := context.Cause(jc)
		jc.finish()
		if cause != want {
			t.Fatalf("OPCommand = %q but context.Cause = %v", cmd, cause)
		}
	}
}

func TestJobContextFinish(t *testing.T) {
	t.Parallel()
	b := &fakeBridge{}
	jc := newJobContext(context.Background(), "J1", nil, b)
	jc.Logger().Info("last words")
	jc.finish()
	if err := jc.Err(); err == nil {
		t.Error("the context is not done after finish")
	}
	if got, want := b.recorded(), []string{"log J1: last words"}; !slices.Equal(got, want) {
		t.Errorf("host saw %q, want %q", got, want)
	}
}

func TestJobContextLogsAfterEnd(t *testing.T) {
	t.Parallel()
	b := &fakeBridge{}
	jc := newJobContext(context.Background(), "J1", nil, b)
	jc.signal(OPStop)
	receive(t, jc.Done(), "the context to end")
	jc.Logger().Info("stopping")
	jc.finish()
	if got, want := b.recorded(), []string{"log J1: stopping"}; !slices.Equal(got, want) {
		t.Errorf("host saw %q, want %q", got, want)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.logNoDeadline != 0 {
		t.Errorf("%d log calls had no deadline", b.logNoDeadline)
	}
}

func TestJobContextIdentity(t *testing.T) {
	t.Parallel()
	jc := newTestJobContext(t, &fakeBridge{}, map[string]string{"region": "eu", "empty": ""})
	if got := jc.JobID(); got != "J1" {
		t.Errorf("JobID = %q, want J1", got)
	}
	tests := []struct {
		key    string
		want   string
		wantOK bool
	}{
		{"region", "eu", true},
		{"empty", "", true},
		{"missing", "", false},
	}
	for _, tc := range tests {
		if v, ok := jc.Property(tc.key); v != tc.want || ok != tc.wantOK {
			t.Errorf("Property(%q) = %q, %v; want %q, %v", tc.key, v, ok, tc.want, tc.wantOK)
		}
	}

	none := newTestJobContext(t, &fakeBridge{}, nil)
	if v, ok := none.Property("region"); ok {
		t.Errorf("Property without properties = %q, true", v)
	}
}

func TestJobContextLaunchJobRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  JobRequest
		want string
	}{
		{"Generic", JobRequest{Name: "SUB"},
			`{"name":"SUB","metadata":{"kind":"Generic","unique":false}}`},
		{"EmptyParametersOmitted", JobRequest{Name: "SUB", Parameters: Parameters{}},
			`{"name":"SUB","metadata":{"kind":"Generic","unique":false}}`},
		{"Everything", JobRequest{Name: "SUB", Parameters: Parameters{"b": []any{1, "x"}, "a": 1.5},
			Unique: true, StatusHook: "http://hook.example/h"},
			`{"name":"SUB","parameters":{"a":1.5,"b":[1,"x"]},"status_hook":"http://hook.example/h",` +
				`"metadata":{"kind":"Generic","unique":true}}`},
		{"Scheduled", JobRequest{Name: "SUB", ScheduleDelay: 30},
			`{"name":"SUB","metadata":{"kind":"Scheduled","schedule_delay":30,"unique":false}}`},
		{"ScheduledUnique", JobRequest{Name: "SUB", ScheduleDelay: 1, Unique: true, Parameters: Parameters{"n": 2}},
			`{"name":"SUB","parameters":{"n":2},"metadata":{"kind":"Scheduled","schedule_delay":1,"unique":true}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeBridge{launchStats: []byte(`{"id":"0123abcd","status":"Pending"}`)}
			jc := newTestJobContext(t, b, nil)
			jc.Logger().Info("launching")
			id, err := jc.LaunchJob(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if id != "0123abcd" {
				t.Errorf("LaunchJob = %q, want the id of the stats", id)
			}
			if len(b.requests) != 1 || string(b.requests[0]) != tc.want {
				t.Errorf("host got request %q, want %q", b.requests, tc.want)
			}
			if got, want := b.recorded(), []string{"log J1: launching", "launch J1"}; !slices.Equal(got, want) {
				t.Errorf("host saw %q, want %q (logs flushed first)", got, want)
			}
		})
	}
}

func TestJobContextLaunchJobErrors(t *testing.T) {
	t.Parallel()
	errHost := errors.New("host unavailable")
	tests := []struct {
		name       string
		req        JobRequest
		stats      string
		bridgeErr  error
		wantErr    error  // wrapped, when not nil
		wantText   string // in the error
		wantLaunch bool   // the request reached the host
	}{
		{name: "EmptyName", req: JobRequest{}, stats: `{"id":"x"}`, wantText: "Name is empty"},
		{name: "ParametersNotJSON", req: JobRequest{Name: "SUB", Parameters: Parameters{"c": make(chan int)}},
			stats: `{"id":"x"}`, wantText: "parameters are not JSON"},
		{name: "BridgeError", req: JobRequest{Name: "SUB"}, bridgeErr: errHost, wantErr: errHost,
			wantText: "SUB", wantLaunch: true},
		{name: "StatsWithoutID", req: JobRequest{Name: "SUB"}, stats: `{"status":"Pending"}`,
			wantText: "without an id", wantLaunch: true},
		{name: "StatsWithEmptyID", req: JobRequest{Name: "SUB"}, stats: `{"id":""}`,
			wantText: "without an id", wantLaunch: true},
		{name: "StatsNotJSON", req: JobRequest{Name: "SUB"}, stats: `not json`,
			wantText: "without an id", wantLaunch: true},
		{name: "NoStats", req: JobRequest{Name: "SUB"}, wantText: "without an id", wantLaunch: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stats []byte
			if tc.stats != "" {
				stats = []byte(tc.stats)
			}
			b := &fakeBridge{launchStats: stats, launchErr: tc.bridgeErr}
			jc := newTestJobContext(t, b, nil)
			id, err := jc.LaunchJob(tc.req)
			if err == nil {
				t.Fatalf("LaunchJob = %q, nil; want an error", id)
			}
			if id != "" {
				t.Errorf("LaunchJob returned id %q with its error", id)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("LaunchJob error %v does not wrap %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("LaunchJob error %q does not contain %q", err, tc.wantText)
			}
			if launched := len(b.requests) > 0; launched != tc.wantLaunch {
				t.Errorf("request reached the host: %v, want %v", launched, tc.wantLaunch)
			}
		})
	}
}
