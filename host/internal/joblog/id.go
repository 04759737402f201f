package joblog

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrNotFound means that no log is stored for the job. Functions of this
// package return it wrapped with the job ID; test for it with errors.Is.
var ErrNotFound = errors.New("joblog: no log for this job")

// ErrBadID means that a string is not a valid job ID (see ValidID). It is
// returned before any storage is touched.
var ErrBadID = errors.New("joblog: invalid job ID")

const (
	idHexLen     = 24
	maxUnixDigit = 19 // len("9223372036854775807")
)

// ValidID reports whether id is a job ID: 24 lower-case hexadecimal
// characters, optionally followed by "@" and a decimal unix time, as the
// executions of a periodic job are named ("0123456789abcdef01234567@1700000000").
//
// A valid ID holds no path separator, dot or other special character, so
// it can name a file inside a directory and nothing outside it.
func ValidID(id string) bool {
	if len(id) < idHexLen {
		return false
	}
	for i := 0; i < idHexLen; i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	rest := id[idHexLen:]
	if rest == "" {
		return true
	}
	if rest[0] != '@' {
		return false
	}
	ts := rest[1:]
	if ts == "" || len(ts) > maxUnixDigit {
		return false
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return false
		}
	}
	// Every digit string up to 19 long but one range fits an int64; reject
	// the rest so that the time always means something.
	_, err := strconv.ParseInt(ts, 10, 64)
	return err == nil
}

// badID wraps ErrBadID with the offending ID, quoted so that control
// characters cannot forge log lines.
func badID(id string) error {
	return fmt.Errorf("%w: %q", ErrBadID, id)
}

// notFound wraps ErrNotFound with the job ID.
func notFound(id string) error {
	return fmt.Errorf("%w: job %s", ErrNotFound, id)
}
