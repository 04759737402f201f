package job

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
)

// NewID returns a new job ID: 24 lowercase hex characters, the format of
// gocraft/work's and Harbor's job IDs.
func NewID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("job: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// ExecutionID is the ID of the execution of periodic policy policyID that
// fires at unix time t.
func ExecutionID(policyID string, t int64) string {
	return policyID + "@" + strconv.FormatInt(t, 10)
}

// ValidID tells whether id is a job ID: 24 lowercase hex characters,
// optionally followed by "@" and a unix time (a periodic execution).
// Anything else, a path in particular, is not.
func ValidID(id string) bool {
	base, t, isExec := strings.Cut(id, "@")
	if isExec && !validUnix(t) {
		return false
	}
	return validBase(base)
}

// ValidPolicyID tells whether id is a job ID that is not an execution ID.
func ValidPolicyID(id string) bool { return validBase(id) }

func validBase(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validUnix accepts the decimal digits of a non-negative int64 without
// leading zeros.
func validUnix(s string) bool {
	if len(s) == 0 || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}
