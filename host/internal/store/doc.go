// Package store owns Berth's data in Redis: every key's spelling (keys.go,
// the only place that knows them, gocraft/work's included), the stats hash
// of each job, the listing indices, and the Lua scripts that change them
// atomically.
//
// A job's stats are written in the same script that makes the job visible
// to workers, so a worker never finds a job without stats. Every change is
// one script (one round trip). The scripts share one prelude (scripts.go):
// move is the only code that changes a status, and applies the rule of
// job.CanMove, the TTL of a final status, the job's listing index, the
// trim of its parent's executions and its status hook event in the same
// step; checkin and insert share the rest. Each script returns the
// job.Event values of the changes it made.
//
// A unique job holds a claim (Keys.Unique, gocraft/work's unique key)
// from its submission to its final status, across retries, new revisions
// and hosts: a duplicate submission, a retry action or the start of an
// execution of a unique periodic policy meets the claim in the same
// script that would make the job live, and is refused or skipped. move
// releases the claim with the final status and renews its TTL with every
// other change, so that the claim of a lost job expires.
//
// A running job has a lease (Keys.Leases, Keys.LeaseHolders): the start
// takes it for the store's holder (one per host), the holder renews it,
// and move drops it with the Running status. A start of a job that another
// holder's live lease covers is refused (the job runs there), and a job
// whose lease expired is queued again in a new revision by RecoverLease.
//
// gocraft/work's own keys keep gocraft/work's layout (Harbor's dashboard
// and exporters read them) and reach the scripts as KEYS; Berth writes job
// entries in gocraft/work's JSON format so that its workers run them
// unchanged.
//
// It changes jobs only when asked by the lifecycle owner (package jobs),
// which publishes the events its changes return; it decides nothing about
// retries, schedules or hooks.
package store
