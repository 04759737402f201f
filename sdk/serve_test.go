package sdk

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCheckJobs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		jobs    Jobs
		wantErr string // in the error; empty for none
	}{
		{name: "Nil", jobs: nil, wantErr: "at least one job"},
		{name: "Empty", jobs: Jobs{}, wantErr: "at least one job"},
		{name: "EmptyName", jobs: Jobs{"": testJob{}, "OK": testJob{}}, wantErr: "empty name"},
		{name: "NilJob", jobs: Jobs{"OK": testJob{}, "BROKEN": nil}, wantErr: `job "BROKEN" is nil`},
		{name: "Valid", jobs: Jobs{"A": testJob{}, "B": limitedJob{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkJobs(tc.jobs)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("checkJobs = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("checkJobs = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestWatchParent(t *testing.T) {
	t.Parallel()

	t.Run("ParentGone", func(t *testing.T) {
		t.Parallel()
		gone := make(chan struct{}, 1)
		// No process has a negative pid: the parent looks replaced.
		returned := async(func() {
			watchParent(context.Background(), -1, time.Millisecond, func() { gone <- struct{}{} })
		})
		receive(t, gone, "gone to be called")
		receive(t, returned, "watchParent to return after calling gone")
	})

	t.Run("ContextCancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		called := make(chan struct{}, 1)
		returned := async(func() {
			watchParent(ctx, os.Getppid(), time.Millisecond, func() { called <- struct{}{} })
		})
		quiet(t, returned, "watchParent returning while the parent lives")
		cancel()
		receive(t, returned, "watchParent to return on cancel")
		select {
		case <-called:
			t.Error("gone was called while the parent lives")
		default:
		}
	})
}
