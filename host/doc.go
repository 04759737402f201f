// Command berth is the Berth job service host: it serves Harbor's job
// service REST API, runs jobs from Redis through job plugins and reports
// their status to web hooks.
//
//	berth -c config.yml
//
// See README.md for the configuration and its environment overrides.
//
// It only reads flags, loads the configuration, sets up the service log and
// the signal context, and runs a host (package daemon); everything else is
// under host/internal.
package main
