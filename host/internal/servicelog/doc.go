// Package servicelog builds the host's own logger (go-hclog) from the
// `loggers` section of the configuration: STD_OUTPUT and FILE backends,
// each with its level.
package servicelog
