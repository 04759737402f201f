package job

import "github.com/berth-dev/berth/host/client"

// Status is a job's status (Code, Final and Validate are its methods).
type Status = client.Status

// Statuses, in the order a revision moves through them.
const (
	Pending   = client.Pending
	Scheduled = client.Scheduled
	Running   = client.Running
	Stopped   = client.Stopped
	Error     = client.Error
	Success   = client.Success
)

// Statuses lists every status.
var Statuses = client.Statuses

// CanMove is the rule for every status change of a job: a newer revision
// may take any status; within a revision a status only moves forward, and a
// final status never changes (writing the same status again is a no-op,
// which callers treat as done rather than as a conflict). An older
// revision never overwrites a newer one.
//
// The Lua transition script in package store implements the same rule; a
// test checks that they agree on every pair. It makes one exception: a job
// in Error waiting for its retry is not final yet, and a stop moves it to
// Stopped in its own revision (a stop is not one more run).
func CanMove(from Status, fromRev int64, to Status, toRev int64) bool {
	if to.Code() < 0 {
		return false
	}
	switch {
	case toRev > fromRev:
		return true
	case toRev < fromRev:
		return false
	}
	return to.Code() > from.Code()
}
