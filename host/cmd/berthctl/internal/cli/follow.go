package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/host/client"
)

// defaultInterval is how often watch, log -f and submit --wait read.
const defaultInterval = 500 * time.Millisecond

func (a *app) watchCommand() *cobra.Command {
	interval := defaultInterval
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Print a job's status and check-ins as they change, until it ends",
		Long: `Print a job's status and check-in each time they change (as seen by reading
the job every --interval), until the status is final. With -o json each
change is the API's answer, one a line.

The exit code is the job's: 0 Success, 1 Error, 2 Stopped. A job in Error
may still be retried: watch ends at the Error of the run it saw.`,
		Args: exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return usagef("--interval %s: want a positive duration", interval)
			}
			final, err := a.follow(cmd.Context(), args[0], interval, a.showChange)
			if err != nil {
				return err
			}
			return &endedError{status: final.Status}
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", defaultInterval, "how often to read the job")
	return cmd
}

// showChange prints a job's stats that differ from the last ones shown.
func (a *app) showChange(st *client.Stats, prev *client.Stats) error {
	if a.json() {
		return a.printLast()
	}
	when := st.UpdateTime
	if st.CheckIn != "" && st.CheckInAt > 0 && (prev == nil || st.CheckInAt != prev.CheckInAt || st.CheckIn != prev.CheckIn) {
		when = st.CheckInAt
	}
	line := fmt.Sprintf("%s  %-9s", unixTime(when), st.Status)
	if prev != nil && prev.Revision != st.Revision {
		line += "  (a new run)"
	}
	if st.CheckIn != "" {
		line += "  " + oneLineKeep(st.CheckIn)
	}
	_, err := fmt.Fprintln(a.stdout, strings.TrimRight(line, " "))
	return err
}

// changed tells whether a job's status or check-in differ between a and b.
func changed(a, b *client.Stats) bool {
	return a.Status != b.Status || a.Revision != b.Revision || a.CheckIn != b.CheckIn || a.CheckInAt != b.CheckInAt
}

// follow reads job id every interval until its status is final and
// returns the final stats. show, when not nil, gets the stats read first
// and each that changed since (with the ones before).
func (a *app) follow(ctx context.Context, id string, interval time.Duration, show func(st, prev *client.Stats) error) (*client.Stats, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var prev *client.Stats
	for {
		st, err := c.Get(ctx, id)
		if err != nil {
			return nil, remote(err)
		}
		if show != nil && (prev == nil || changed(prev, st)) {
			if err := show(st, prev); err != nil {
				return nil, err
			}
		}
		prev = st
		if st.Status.Final() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (a *app) logCommand() *cobra.Command {
	var follow bool
	interval := defaultInterval
	cmd := &cobra.Command{
		Use:   "log ID",
		Short: "Print a job's log",
		Long: `Print a job's log (the API keeps the last max_retrieve_size_mb of it). The
log is text whatever -o says.

With -f, berthctl reads the log every --interval while the job runs and
prints only what is new, until the job's status is final.`,
		Args: exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if follow && interval <= 0 {
				return usagef("--interval %s: want a positive duration", interval)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if !follow {
				b, err := c.Log(cmd.Context(), args[0])
				if err != nil {
					return remote(err)
				}
				_, err = a.stdout.Write(b)
				return err
			}
			return a.followLog(cmd.Context(), c, args[0], interval)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log while the job runs")
	cmd.Flags().DurationVar(&interval, "interval", defaultInterval, "how often -f reads the log")
	return cmd
}

// followLog prints a job's log as it grows, until the job is final. The
// status is read before the log, and once it is final the log is read one
// interval later again, so that lines written as the job ended are shown.
func (a *app) followLog(ctx context.Context, c *client.Client, id string, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var seen logTail
	finalAt := -1 // the read that saw the final status
	for i := 0; ; i++ {
		if finalAt < 0 {
			st, err := c.Get(ctx, id)
			if err != nil {
				return remote(err)
			}
			if st.Status.Final() {
				finalAt = i
			}
		}
		b, err := c.Log(ctx, id)
		if err != nil {
			return remote(err)
		}
		news, gap := seen.next(b)
		if gap {
			fmt.Fprintln(a.stderr, "berthctl: the log's window moved past what was shown: some lines are not shown")
		}
		if _, err := a.stdout.Write(news); err != nil {
			return err
		}
		if finalAt >= 0 && i > finalAt {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// A moved window of the log is matched by its first logHead bytes, at
// most logTries places of the last read.
const (
	logHead  = 64
	logTries = 64
)

// logTail finds what is new in successive reads of a log.
type logTail struct{ prev []byte }

// next returns the part of text not returned before; gap tells that the
// API's window (the last max_retrieve_size_mb of the log) moved so far
// that text may have been missed.
func (t *logTail) next(text []byte) (news []byte, gap bool) {
	prev := t.prev
	t.prev = text
	if bytes.HasPrefix(text, prev) {
		return text[len(prev):], false
	}
	if n, ok := overlap(prev, text); ok {
		return text[n:], false
	}
	return text, len(prev) > 0 && len(text) > 0
}

// overlap finds the longest end of prev that text starts with, of at least
// logHead bytes (or all of text), and returns its length.
func overlap(prev, text []byte) (int, bool) {
	head := text[:min(len(text), logHead)]
	if len(head) == 0 {
		return 0, false
	}
	from := 0
	for range logTries {
		i := bytes.Index(prev[from:], head)
		if i < 0 {
			return 0, false
		}
		k := from + i
		if bytes.HasPrefix(text, prev[k:]) {
			return len(prev) - k, true
		}
		from = k + 1
	}
	return 0, false
}
