// Package servicelog builds the host's own logger (go-hclog) from the
// `loggers` section of the configuration: STD_OUTPUT and FILE backends,
// each with its level.
//
// It is the service's own log, never a job's (package joblog).
package servicelog
