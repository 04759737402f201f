package core

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckJobs(t *testing.T) {
	t.Parallel()
	ok := jobOf(func(*JobContext, []byte) error { return nil })
	tests := []struct {
		name    string
		jobs    map[string]Job
		want    []string
		wantErr string
	}{
		{"Nil", nil, nil, "sdk.Serve needs at least one job"},
		{"Empty", map[string]Job{}, nil, "sdk.Serve needs at least one job"},
		{"EmptyName", map[string]Job{"A": ok, "": ok}, nil, "a job has an empty name"},
		{"ZeroJob", map[string]Job{"A": ok, "B": {}}, nil, `job "B" is the zero sdk.Job`},
		{"NoRun", map[string]Job{"C": NewJob(Spec{})}, nil, `job "C" is the zero sdk.Job`},
		{"SortedNames", map[string]Job{"b": ok, "C": ok, "a": ok}, []string{"C", "a", "b"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			names, err := checkJobs(tc.jobs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("checkJobs = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(names, tc.want) {
				t.Errorf("checkJobs = %q, %v, want %q", names, err, tc.want)
			}
		})
	}
}

func TestSpecOf(t *testing.T) {
	t.Parallel()
	if SpecOf(Job{}) != nil {
		t.Error("SpecOf(Job{}) is not nil")
	}
	if s := SpecOf(NewJob(Spec{Version: "1"})); s == nil || s.Version != "1" {
		t.Errorf("SpecOf = %+v", s)
	}
}

func TestPermanentAndSnoozeErrors(t *testing.T) {
	t.Parallel()
	cause := errors.New("wrong password")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"Permanent", Permanent(cause), "wrong password"},
		{"PermanentNil", Permanent(nil), "permanent failure"},
		{"Snooze", Snooze(time.Minute, "report not ready"), "snoozed for 1m0s: report not ready"},
		{"SnoozeNoReason", Snooze(2*time.Second, ""), "snoozed for 2s"},
		{"SnoozeAtLeastASecond", Snooze(-time.Hour, "now"), "snoozed for 1s: now"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
	if !errors.Is(Permanent(cause), cause) || !errors.Is(fmt.Errorf("x: %w", Permanent(cause)), cause) {
		t.Error("Permanent does not unwrap to its error")
	}
}
