//go:build unix

package joblog

import "syscall"

// oNoFollow makes opening a symbolic link fail, so that a link planted in
// the log directory cannot redirect a job's log elsewhere.
const oNoFollow = syscall.O_NOFOLLOW
