// Package joblog owns the logs of jobs: the lines a job writes while it runs
// (through the host's context bridge) and the way back out through
// GET /api/v1/jobs/{id}/log.
//
// It provides:
//
//   - Level, the five Harbor log levels, and ParseLevel for the config.
//   - job.ValidID, the job ID check that every function taking a job ID runs
//     before it touches any storage, so that an ID can never name a path
//     outside the log directory.
//   - Backends (the job_loggers of the config): STD_OUTPUT (NewStdOutput)
//     writes entries prefixed with the job ID to a shared writer; FILE
//     (NewFile) keeps one append-only file per job, can read it back while
//     the job still writes (Getter) and deletes old files (Sweeper); REDIS
//     (NewRedis) keeps one bounded string per job in Redis that expires on
//     its own, so that every host can serve any job's log (Getter).
//   - Manager, which the host uses: it fans one job's entries out to every
//     configured backend, serves reads through the configured getter and
//     runs the sweepers on a timer.
//
// An entry is one line, or several if the message has newlines:
//
//	2026-11-21T14:03:05Z [INFO] message
//
// with the time in UTC to the second. Each entry reaches a backend in a
// single write, so entries from concurrent writers never interleave.
//
// The service's own log (config key loggers) is not kept here: it goes
// through go-hclog.
package joblog
