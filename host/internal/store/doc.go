// Package store owns Berth's data in Redis: every key's spelling (keys.go,
// the only place that knows them, gocraft/work's included), the stats hash
// of each job, and the Lua scripts that change them atomically.
//
// A job's stats are written in the same script that makes the job visible
// to workers, so a worker never finds a job without stats. Every status
// change is one script (one round trip) that applies the rule of
// job.CanMove; final statuses get their TTL in the same script.
//
// gocraft/work's own keys keep gocraft/work's layout (Harbor's dashboard
// and exporters read them); Berth writes job entries in gocraft/work's JSON
// format so that its workers run them unchanged.
package store
