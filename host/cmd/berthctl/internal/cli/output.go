package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/host/client"
)

// table writes aligned columns.
type table struct{ w *tabwriter.Writer }

func newTable(out io.Writer) *table { return &table{w: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)} }

// row writes one row; cells are put on one line each.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(oneLineKeep(c), "\t", " ")
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.w.Flush() }

// oneLineKeep puts s on one line, keeping its inner spacing.
func oneLineKeep(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// unixTime shows unix seconds in UTC, "-" for none.
func unixTime(s int64) string {
	if s <= 0 {
		return "-"
	}
	return time.Unix(s, 0).UTC().Format(time.RFC3339)
}

// orDash is s, or "-" when empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// jobRows is the listing of jobs.
func jobRows(out io.Writer, jobs []*client.Stats) error {
	t := newTable(out)
	t.row("ID", "NAME", "KIND", "STATUS", "UPDATED", "CHECK-IN")
	for _, s := range jobs {
		t.row(s.ID, s.Name, string(s.Kind), string(s.Status), unixTime(s.UpdateTime), orDash(s.CheckIn))
	}
	return t.flush()
}

// jobDetails shows one job, a field a line.
func jobDetails(out io.Writer, s *client.Stats) error {
	t := newTable(out)
	add := func(k, v string) {
		if v != "" {
			t.row(k, v)
		}
	}
	add("ID", s.ID)
	add("NAME", s.Name)
	add("KIND", string(s.Kind))
	add("STATUS", string(s.Status))
	if s.Revision > 0 {
		add("REVISION", strconv.FormatInt(s.Revision, 10))
	}
	add("UNIQUE", strconv.FormatBool(s.Unique))
	add("CRON", s.CronSpec)
	add("ENQUEUED", unixTime(s.EnqueueTime))
	add("UPDATED", unixTime(s.UpdateTime))
	if s.RunAt > 0 {
		add("RUN AT", unixTime(s.RunAt))
	}
	if s.CheckIn != "" {
		add("CHECK-IN", s.CheckIn)
		add("CHECK-IN AT", unixTime(s.CheckInAt))
	}
	if s.DieAt > 0 {
		add("DIES AT", unixTime(s.DieAt))
	}
	add("UPSTREAM", s.UpstreamJobID)
	add("HOOK", s.WebHookURL)
	if s.Ack != nil {
		add("HOOK ACK", fmt.Sprintf("%s, revision %d, check-in at %s", s.Ack.Status, s.Ack.Revision, unixTime(s.Ack.CheckInAt)))
	}
	if len(s.Parameters) > 0 {
		b, err := json.Marshal(s.Parameters)
		if err != nil {
			return fmt.Errorf("show the parameters of %s: %w", s.ID, err)
		}
		add("PARAMETERS", string(b))
	}
	add("OUTPUT", string(s.Output))
	return t.flush()
}

// poolRows is the listing of worker pools.
func poolRows(out io.Writer, pools []*client.WorkerPool) error {
	t := newTable(out)
	t.row("WORKER POOL", "STATUS", "CONCURRENCY", "STARTED", "HEARTBEAT", "JOB TYPES")
	for _, p := range pools {
		t.row(p.WorkerPoolID, p.Status, strconv.FormatUint(uint64(p.Concurrency), 10),
			unixTime(p.StartedAt), unixTime(p.HeartbeatAt), orDash(strings.Join(p.JobNames, ",")))
	}
	return t.flush()
}

// configRows shows the service's configuration as the API gives it (the
// host's api.hide_redis_password decides whether the URL shows a password).
func configRows(out io.Writer, c *client.PoolConfig) error {
	t := newTable(out)
	r := c.RedisPoolConfig
	t.row("REDIS URL", orDash(r.RedisURL))
	t.row("NAMESPACE", orDash(r.Namespace))
	t.row("IDLE TIMEOUT", (time.Duration(r.IdleTimeoutSecond) * time.Second).String())
	return t.flush()
}
