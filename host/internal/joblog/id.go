package joblog

import (
	"errors"
	"fmt"
)

// ErrNotFound means that no log is stored for the job. Functions of this
// package return it wrapped with the job ID; test for it with errors.Is.
var ErrNotFound = errors.New("joblog: no log for this job")

// ErrBadID means that a string is not a valid job ID (see ValidID). It is
// returned before any storage is touched.
var ErrBadID = errors.New("joblog: invalid job ID")

// badID wraps ErrBadID with the offending ID, quoted so that control
// characters cannot forge log lines.
func badID(id string) error {
	return fmt.Errorf("%w: %q", ErrBadID, id)
}

// notFound wraps ErrNotFound with the job ID.
func notFound(id string) error {
	return fmt.Errorf("%w: job %s", ErrNotFound, id)
}
