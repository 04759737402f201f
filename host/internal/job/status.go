package job

import "fmt"

// Status is a job's status.
type Status string

// Statuses, in the order a revision moves through them.
const (
	Pending   Status = "Pending"
	Scheduled Status = "Scheduled"
	Running   Status = "Running"
	Stopped   Status = "Stopped"
	Error     Status = "Error"
	Success   Status = "Success"
)

// Statuses lists every status.
var Statuses = []Status{Pending, Scheduled, Running, Stopped, Error, Success}

// Code is the rank of the status within a revision: Pending 0, Scheduled 1,
// Running 2, the final ones 3. It is -1 for an unknown status.
func (s Status) Code() int {
	switch s {
	case Pending:
		return 0
	case Scheduled:
		return 1
	case Running:
		return 2
	case Stopped, Error, Success:
		return 3
	}
	return -1
}

// Validate reports an unknown status.
func (s Status) Validate() error {
	if s.Code() < 0 {
		return fmt.Errorf("job: unknown status %q", string(s))
	}
	return nil
}

// Final tells whether the status ends a revision.
func (s Status) Final() bool { return s.Code() == 3 }

// CanMove is the rule for every status change of a job: a newer revision
// may take any status; within a revision a status only moves forward, and a
// final status never changes (writing the same status again is a no-op,
// which callers treat as done rather than as a conflict). An older
// revision never overwrites a newer one.
//
// The Lua transition script in package store implements the same rule; a
// test checks that they agree on every pair.
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
