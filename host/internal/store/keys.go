package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/host/internal/job"
)

// Keys builds every Redis key and channel of one namespace. Nothing else
// in Berth spells a key.
type Keys struct {
	// prefix is "{<namespace>}:"; the braces make the namespace a Redis
	// Cluster hash tag, so that one script may touch all of a namespace's
	// keys.
	prefix string
}

// NewKeys returns the keys of namespace (given without braces).
func NewKeys(namespace string) Keys { return Keys{prefix: "{" + namespace + "}:"} }

// WorkNamespace is the namespace to give gocraft/work ("{<namespace>}";
// gocraft/work appends the ":").
func (k Keys) WorkNamespace() string { return k.prefix[:len(k.prefix)-1] }

// Stats is the hash of a job's stats (Harbor's spelling).
func (k Keys) Stats(id string) string { return k.prefix + "job_stats:" + id }

// StatsPattern matches every stats hash, for SCAN.
func (k Keys) StatsPattern() string { return k.prefix + "job_stats:*" }

// StatsID returns the job ID of a stats key.
func (k Keys) StatsID(key string) string { return key[len(k.StatsPrefix()):] }

// Executions is the sorted set of a periodic policy's executions (or of
// a job's sub-jobs).
func (k Keys) Executions(policyID string) string { return k.ExecutionsPrefix() + policyID }

// ExecutionsPrefix is the prefix of every executions set.
func (k Keys) ExecutionsPrefix() string { return k.prefix + "executions:" }

// StatsPrefix is the prefix of every stats key: StatsPrefix()+id is
// Stats(id).
func (k Keys) StatsPrefix() string { return k.prefix + "job_stats:" }

// Policies is the set of the IDs of active periodic policies.
func (k Keys) Policies() string { return k.prefix + "berth:policies" }

// JobLog is the key of a job's log in Redis (the REDIS job logger).
func (k Keys) JobLog(id string) string { return k.prefix + "berth:log:" + id }

// LogLoss says why a job's log is incomplete (a host could not write it),
// for every host that reads the log.
func (k Keys) LogLoss(id string) string { return k.prefix + "berth:log_loss:" + id }

// HookEventsPrefix is the prefix of the lists of a job's undelivered
// status hook events: HookEventsPrefix()+id.
func (k Keys) HookEventsPrefix() string { return k.prefix + "berth:hook:" }

// HookEvents is the list of a job's undelivered status hook events.
func (k Keys) HookEvents(id string) string { return k.HookEventsPrefix() + id }

// HooksDue is the sorted set of the jobs with hook events to deliver,
// scored by the time (ms) their next delivery is due.
func (k Keys) HooksDue() string { return k.prefix + "berth:hooks:due" }

// HookAttempts counts the failed deliveries of each job's first event.
func (k Keys) HookAttempts() string { return k.prefix + "berth:hooks:attempts" }

// Hooks is the pub/sub channel on which the ID of a job with a new hook
// event is published, to wake the hosts' deliverers.
func (k Keys) Hooks() string { return k.prefix + "berth:hooks" }

// IndexPrefix is the prefix of every listing index.
func (k Keys) IndexPrefix() string { return k.prefix + "berth:idx:" }

// Index is the listing index of the jobs of one kind, status and name: a
// sorted set of job IDs scored by submission time in ms. Every job is in
// exactly one index, moved by each status change in the same script; the
// entries of jobs whose stats expired are pruned as listings and the
// reaper meet them. The Lua in scripts.go builds the same key.
func (k Keys) Index(kind job.Kind, status job.Status, name string) string {
	return k.IndexPrefix() + string(kind) + ":" + string(status) + ":" + name
}

// Leases is the sorted set of the leases of running jobs: a job ID scored
// by the time (unix ms) its lease expires. The host running the job renews
// it; a job whose lease expired is recovered by the reaper of any host.
// The Lua in scripts.go gets it in the environment.
func (k Keys) Leases() string { return k.prefix + "berth:leases" }

// LeaseHolders is the hash of the holder (a host's lease name) of each
// lease in Leases.
func (k Keys) LeaseHolders() string { return k.prefix + "berth:leases:holders" }

// ReaperLock is held by the host doing the reaper's pass.
func (k Keys) ReaperLock() string { return k.prefix + "berth:reaper:lock" }

// ReaperCursor is where the reaper's scan for hooks left off.
func (k Keys) ReaperCursor() string { return k.prefix + "berth:reaper:cursor" }

// Timer is the pub/sub channel on which the run time of every job put in
// the scheduled set is published, to wake the hosts' requeuers early.
func (k Keys) Timer() string { return k.prefix + "berth:timer" }

// Signals is the pub/sub channel of stop and cancel requests.
func (k Keys) Signals() string { return k.prefix + "berth:signals" }

// Doorbell is the pub/sub channel on which the name of every job queued
// for immediate run is published, to wake idle workers.
func (k Keys) Doorbell() string { return k.prefix + "berth:doorbell" }

// gocraft/work's keys, spelled as gocraft/work v0.5.1 spells them.

// Jobs is the queue (list) of a job name.
func (k Keys) Jobs(name string) string { return k.JobsPrefix() + name }

// JobsPrefix is the prefix of every queue key.
func (k Keys) JobsPrefix() string { return k.prefix + "jobs:" }

// Paused marks the queue of a job name paused (gocraft/work and Harbor's
// dashboard).
func (k Keys) Paused(name string) string { return k.Jobs(name) + ":paused" }

// InProgress is the list of the jobs of name that worker pool poolID
// took and has not finished.
func (k Keys) InProgress(name, poolID string) string {
	return k.Jobs(name) + ":" + poolID + ":inprogress"
}

// Lock counts the running jobs of name across every pool, for
// gocraft/work's MaxConcurrency.
func (k Keys) Lock(name string) string { return k.Jobs(name) + ":lock" }

// LockInfo holds, per worker pool, its share of Lock.
func (k Keys) LockInfo(name string) string { return k.Jobs(name) + ":lock_info" }

// MaxConcurrency is the most jobs of name that may run at once (0: no
// limit), as gocraft/work's pools write it. scriptStart reads it by its
// suffix.
func (k Keys) MaxConcurrency(name string) string { return k.Jobs(name) + ":max_concurrency" }

// KnownJobs is the set of job names.
func (k Keys) KnownJobs() string { return k.prefix + "known_jobs" }

// Scheduled is the sorted set of jobs waiting for their run time.
func (k Keys) Scheduled() string { return k.prefix + "scheduled" }

// Retry is the sorted set of failed jobs waiting to be retried.
func (k Keys) Retry() string { return k.prefix + "retry" }

// WorkerPools is the set of worker pool IDs.
func (k Keys) WorkerPools() string { return k.prefix + "worker_pools" }

// Heartbeat is the hash of a worker pool's heartbeat.
func (k Keys) Heartbeat(poolID string) string { return k.prefix + "worker_pools:" + poolID }

// Unique is the claim of a unique job: it holds the ID of the one job of
// that name and arguments that has not ended, from its submission to its
// final status, with a TTL renewed while the job lives. It is
// gocraft/work's unique key, spelled exactly as gocraft/work spells it
// (the JSON of the arguments as encoding/json's Encoder writes it, newline
// included), so that gocraft/work's EnqueueUnique on the same namespace
// sees it. gocraft/work's worker deletes the key when it takes an entry
// flagged unique; Berth's entries are never flagged (Entry.Unique), so the
// claim outlives the queue, and a job's stats keep the key of its claim.
func (k Keys) Unique(name string, args map[string]any) (string, error) {
	var b bytes.Buffer
	b.WriteString(k.prefix + "unique:" + name + ":")
	if args != nil {
		if err := json.NewEncoder(&b).Encode(args); err != nil {
			return "", fmt.Errorf("store: unique key of %s: %w", name, err)
		}
	}
	return b.String(), nil
}
