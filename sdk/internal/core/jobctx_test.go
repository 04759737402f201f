package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/sdk/proto"
)

func TestSetOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		v       any
		wantErr string // "" for nil
	}{
		{"Object", map[string]any{"copied": 3}, ""},
		{"Null", nil, ""},
		{"ExactlyTheLimit", strings.Repeat("a", MaxOutputBytes-2), ""}, // with its quotes
		{"OverTheLimit", strings.Repeat("a", MaxOutputBytes-1), fmt.Sprintf("sdk: the output is %d bytes of JSON, more than the %d allowed", MaxOutputBytes+1, MaxOutputBytes)},
		{"NotJSON", make(chan int), "sdk: the output is not JSON: json: unsupported type: chan int"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			jc := &JobContext{}
			_ = jc.SetOutput("earlier")
			err := jc.SetOutput(tc.v)
			want, _ := json.Marshal(tc.v)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("SetOutput = %v, want %s", err, tc.wantErr)
				}
				// A refused output leaves the earlier one.
				want = []byte(`"earlier"`)
			} else if err != nil {
				t.Fatalf("SetOutput = %v", err)
			}
			if got := jc.outputJSON(); string(got) != string(want) {
				t.Errorf("output is %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestEncodeJobRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		req     JobRequest
		want    string
		wantErr string
	}{
		{"Generic", JobRequest{Name: "SUB", Parameters: map[string]any{"k": "v"}},
			`{"name":"SUB","parameters":{"k":"v"},"metadata":{"kind":"Generic","unique":false}}`, ""},
		{"Scheduled", JobRequest{Name: "SUB", ScheduleDelay: 30},
			`{"name":"SUB","metadata":{"kind":"Scheduled","schedule_delay":30,"unique":false}}`, ""},
		{"UniqueWithHook", JobRequest{Name: "SUB", Unique: true, StatusHook: "http://hook"},
			`{"name":"SUB","status_hook":"http://hook","metadata":{"kind":"Generic","unique":true}}`, ""},
		{"NoName", JobRequest{}, "", "sdk: launch sub-job: JobRequest.Name is empty"},
		{"ParametersNotJSON", JobRequest{Name: "SUB", Parameters: map[string]any{"c": make(chan int)}}, "",
			"sdk: launch sub-job SUB: parameters are not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := encodeJobRequest(tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Errorf("encodeJobRequest = %s, %v, want an error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("encodeJobRequest = %s, %v\nwant %s", got, err, tc.want)
			}
		})
	}
}

// A check-in without a message, or a launch that cannot be encoded, is an
// error of the call and sends nothing.
func TestRefusedCallsSendNothing(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
		errCheckin := jc.Checkin("")
		_, errLaunch := jc.LaunchJob(JobRequest{})
		got <- fmt.Sprintf("%v | %v", errCheckin, errLaunch)
		return nil
	})})
	h.run("1", "J", "")
	if g, w := receive(t, got, "the run"), "sdk: a check-in needs a message | sdk: launch sub-job: JobRequest.Name is empty"; g != w {
		t.Errorf("got %s, want %s", g, w)
	}
	if m := h.next(); m.GetOutcome() == nil {
		t.Errorf("the first message is %v, want the outcome", m)
	}
}

// A check-in outlives a stop: a job may report why it ends.
func TestCheckinAfterStop(t *testing.T) {
	t.Parallel()
	h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
		if err := jc.Checkin("ready"); err != nil {
			return err
		}
		<-jc.Done()
		return jc.Checkin("stopping: " + context.Cause(jc).Error())
	})})
	h.run("1", "J", "")
	h.next()
	h.stop("1", proto.StopReason_STOP_REASON_STOP)
	if ck := h.next().GetCheckin(); ck.GetMessage() != "stopping: "+ErrStopped.Error() {
		t.Errorf("got check-in %v", ck)
	}
	if out := h.next().GetOutcome(); out.GetKind() != proto.Outcome_KIND_ERROR || out.GetError() != ErrStopped.Error() {
		t.Errorf("outcome = %v", out)
	}
}

// A launch on a context that has ended returns the cause; it must not also
// ask the host for the sub-job, which the job then believes was not
// launched.
func TestLaunchAfterStopSendsNothing(t *testing.T) {
	t.Parallel()
	got := make(chan error, 1)
	h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
		if err := jc.Checkin("ready"); err != nil {
			return err
		}
		<-jc.Done()
		_, err := jc.LaunchJob(JobRequest{Name: "SUB"})
		got <- err
		return err
	})})
	h.run("1", "J", "")
	h.next()
	h.stop("1", proto.StopReason_STOP_REASON_STOP)
	if err := receive(t, got, "LaunchJob"); !errors.Is(err, ErrStopped) {
		t.Errorf("LaunchJob = %v, want the stop", err)
	}
	if m := h.next(); m.GetOutcome() == nil {
		t.Errorf("after the stop the plugin sent %v, want only the outcome", m)
	}
}

// What a job's goroutines do after Run returned must not reach the stream
// after the outcome ("nothing more may be sent for it"), and must not
// wait for answers the host will never send.
func TestNothingAfterTheOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		late func(jc *JobContext) error
	}{
		{"Log", func(jc *JobContext) error { jc.Logger().Info("late"); return nil }},
		{"Checkin", func(jc *JobContext) error { return jc.Checkin("late") }},
		{"LaunchJob", func(jc *JobContext) error { _, err := jc.LaunchJob(JobRequest{Name: "SUB"}); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctxs := make(chan *JobContext, 1)
			h := setup(t, map[string]Job{"J": jobOf(func(jc *JobContext, _ []byte) error {
				ctxs <- jc
				return nil
			})})
			h.run("1", "J", "")
			if out := h.next().GetOutcome(); out.GetKind() != proto.Outcome_KIND_SUCCESS {
				t.Fatalf("outcome = %v", out)
			}
			jc := receive(t, ctxs, "the run")
			done := make(chan error, 1)
			go func() { done <- tc.late(jc) }()
			select {
			case m := <-h.stream.out:
				t.Fatalf("after the outcome the plugin sent %v", m)
			case <-time.After(quietPeriod):
			}
			receive(t, done, "the late call to return")
		})
	}
}
