package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/host/internal/job"
)

// Fields of the stats hash. Harbor's names are kept so that tools reading
// Harbor's hashes can read Berth's.
const (
	fID          = "id"
	fName        = "name"
	fKind        = "kind"
	fUnique      = "unique"
	fStatus      = "status"
	fRefLink     = "ref_link"
	fEnqueueTime = "enqueue_time"
	fUpdateTime  = "update_time"
	fRunAt       = "run_at"
	fCronSpec    = "cron_spec"
	fHook        = "web_hook_url"
	fPolicyNum   = "numeric_policy_id"
	fCheckIn     = "check_in"
	fCheckInAt   = "check_in_at"
	fCheckInSeq  = "check_in_seq" // Berth: numbers the check-ins of a run
	fDieAt       = "die_at"
	fUpstream    = "upstream_job_id"
	fParameters  = "parameters"
	fRevision    = "revision"
	fAck         = "ack"
	// Berth's own fields.
	fOPCommand = "op_command" // stop or cancel, asked of a running job
	fRetryAt   = "retry_at"   // unix time a failed attempt is retried at
	fOutput    = "output"     // JSON a successful run produced
	fSnoozes   = "snoozes"    // how often the job snoozed since it was queued
	fUniqueKey = "unique_key" // a unique job's claim (Keys.Unique)
)

// statsArgs flattens the fields of s that are set into HSET arguments.
func statsArgs(s *job.Stats) ([]any, error) {
	args := []any{
		fID, s.ID, fName, s.Name, fKind, string(s.Kind), fUnique, boolString(s.Unique),
		fStatus, string(s.Status), fRefLink, s.RefLink,
		fEnqueueTime, s.EnqueueTime, fUpdateTime, s.UpdateTime, fRevision, s.Revision,
	}
	add := func(k string, v any, set bool) {
		if set {
			args = append(args, k, v)
		}
	}
	add(fRunAt, s.RunAt, s.RunAt != 0)
	add(fCronSpec, s.CronSpec, s.CronSpec != "")
	add(fHook, s.WebHookURL, s.WebHookURL != "")
	add(fPolicyNum, s.NumericPolicyID, s.NumericPolicyID != 0)
	add(fCheckIn, s.CheckIn, s.CheckIn != "")
	add(fCheckInAt, s.CheckInAt, s.CheckInAt != 0)
	add(fDieAt, s.DieAt, s.DieAt != 0)
	add(fUpstream, s.UpstreamJobID, s.UpstreamJobID != "")
	if len(s.Parameters) > 0 {
		raw, err := json.Marshal(s.Parameters)
		if err != nil {
			return nil, fmt.Errorf("store: parameters of %s are not JSON: %w", s.ID, err)
		}
		args = append(args, fParameters, string(raw))
	}
	return args, nil
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// record is a stats hash as read from Redis, plus Berth's own fields.
type record struct {
	stats     *job.Stats
	opCommand job.Action
}

// parseRecord decodes a flattened HGETALL answer.
func parseRecord(flat []string) (*record, error) {
	if len(flat)%2 != 0 {
		return nil, fmt.Errorf("store: odd stats hash reply (%d items)", len(flat))
	}
	m := make(map[string]string, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		m[flat[i]] = flat[i+1]
	}
	return parseMap(m)
}

func parseMap(m map[string]string) (*record, error) {
	s := &job.Stats{
		ID: m[fID], Name: m[fName], Kind: job.Kind(m[fKind]), Status: job.Status(m[fStatus]),
		RefLink: m[fRefLink], CronSpec: m[fCronSpec], WebHookURL: m[fHook], CheckIn: m[fCheckIn],
		UpstreamJobID: m[fUpstream],
	}
	if s.ID == "" {
		return nil, fmt.Errorf("store: stats hash has no %q field", fID)
	}
	var err error
	num := func(k string) int64 {
		v, ok := m[k]
		if !ok || v == "" || err != nil {
			return 0
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil {
			err = fmt.Errorf("store: stats of %s: field %s is %q, not an integer", s.ID, k, v)
		}
		return n
	}
	s.EnqueueTime, s.UpdateTime, s.RunAt = num(fEnqueueTime), num(fUpdateTime), num(fRunAt)
	s.CheckInAt, s.DieAt, s.NumericPolicyID = num(fCheckInAt), num(fDieAt), num(fPolicyNum)
	s.Revision = num(fRevision)
	r := &record{stats: s, opCommand: job.Action(m[fOPCommand])}
	if err != nil {
		return nil, err
	}
	if v := m[fUnique]; v != "" {
		if s.Unique, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("store: stats of %s: field unique is %q", s.ID, v)
		}
	}
	if v := m[fParameters]; v != "" {
		if err := json.Unmarshal([]byte(v), &s.Parameters); err != nil {
			return nil, fmt.Errorf("store: stats of %s: parameters are not JSON: %w", s.ID, err)
		}
	}
	if v := m[fOutput]; v != "" {
		s.Output = json.RawMessage(v)
	}
	if v := m[fAck]; v != "" {
		s.Ack = &job.Ack{}
		if err := json.Unmarshal([]byte(v), s.Ack); err != nil {
			return nil, fmt.Errorf("store: stats of %s: ack is not JSON: %w", s.ID, err)
		}
	}
	return r, nil
}

// Entry is a job's entry in a gocraft/work queue or sorted set.
type Entry struct {
	Name       string
	ID         string
	EnqueuedAt int64
	// Args is the JSON object of the job's parameters (nil is {}).
	Args json.RawMessage
	// Unique is gocraft/work's flag, which makes its worker delete the
	// job's unique key when it takes the entry. Berth never sets it: its
	// unique jobs hold that key until they end (see Keys.Unique).
	Unique bool
	// Fails, Err and FailedAt describe the failed runs of an entry
	// waiting for its retry, as gocraft/work writes them.
	Fails    int64
	Err      string
	FailedAt int64
}

// workJob is an entry in gocraft/work's JSON format.
type workJob struct {
	Name       string          `json:"name"`
	ID         string          `json:"id"`
	EnqueuedAt int64           `json:"t"`
	Args       json.RawMessage `json:"args"`
	Unique     bool            `json:"unique,omitempty"`
	Fails      int64           `json:"fails,omitempty"`
	Err        string          `json:"err,omitempty"`
	FailedAt   int64           `json:"failed_at,omitempty"`
}

// bytes encodes the entry. The same entry always gives the same bytes, so
// that a queued entry can be found again.
func (e *Entry) bytes() ([]byte, error) {
	args := e.Args
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	id := e.ID
	// A periodic execution "<policy>@<t>" is queued as Harbor queues it:
	// under the policy's ID, with the fire time in PeriodicMark.
	if policy, at, ok := strings.Cut(e.ID, "@"); ok {
		var m map[string]any
		if err := json.Unmarshal(args, &m); err != nil {
			return nil, fmt.Errorf("store: queue entry of %s: arguments: %w", e.ID, err)
		}
		if m == nil {
			m = map[string]any{}
		}
		m[PeriodicMark] = at
		marked, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("store: queue entry of %s: %w", e.ID, err)
		}
		id, args = policy, marked
	}
	raw, err := json.Marshal(workJob{Name: e.Name, ID: id, EnqueuedAt: e.EnqueuedAt, Args: args, Unique: e.Unique,
		Fails: e.Fails, Err: e.Err, FailedAt: e.FailedAt})
	if err != nil {
		return nil, fmt.Errorf("store: queue entry of %s: %w", e.ID, err)
	}
	return raw, nil
}

// PeriodicMark is the argument that marks the queue entry of a periodic
// execution, as Harbor's job service writes it: the entry's ID is the
// policy's, and the mark holds the fire time, so the execution is
// "<entry id>@<mark>". gocraft/work's worker observations, which Harbor
// core's dashboard reads, then show the policy's ID, the ID core knows.
const PeriodicMark = "_job_kind_periodic_"

// JobIDOf returns the ID of the job of a queue entry with id and args.
func JobIDOf(id string, args map[string]any) string {
	if t, ok := args[PeriodicMark].(string); ok && t != "" {
		return id + "@" + t
	}
	return id
}

// entryOf returns the entry of a job from its stats.
func entryOf(s *job.Stats) (*Entry, error) {
	args, err := json.Marshal(nonNil(s.Parameters))
	if err != nil {
		return nil, fmt.Errorf("store: queue entry of %s: %w", s.ID, err)
	}
	return &Entry{Name: s.Name, ID: s.ID, EnqueuedAt: s.EnqueueTime, Args: args}, nil
}

// entry returns the bytes of a job's entry in its queue.
func entry(s *job.Stats) ([]byte, error) {
	e, err := entryOf(s)
	if err != nil {
		return nil, err
	}
	return e.bytes()
}
