// Command plugin is the job plugin of the benchmark (host/internal/bench
// builds it into its own plugins directory; it is never installed).
//
//	NOOP          does nothing and succeeds: the processing benchmark.
//	STAMP         reports the wall-clock time its Run started, then
//	              succeeds: pickup latency and scheduled lateness.
//	HOLD          reports its start, waits for its context (stop) or
//	              hold_seconds (default 60), reports when the context
//	              ended: stop latency.
//	PROFILE_STOP  stops the plugin's CPU profile, if one runs.
//
// Reports are UDP datagrams "<kind> <job id> <unix ns> <pid>" sent to the
// address in env BERTH_PLUGIN_BENCH_STAMPS (kind "run" or "done"). A
// datagram costs one sendto on loopback and touches neither Redis nor the
// host, so the report does not perturb what it measures; the bench and
// the plugin read the same CLOCK_REALTIME. With env
// BERTH_PLUGIN_BENCH_JOBS set to a comma-separated list of names, the
// plugin serves only those (gocraft/work's fetch looks at every queue of
// the pool in turn, so the bench registers the same job types on the raw
// and the Berth side). With env BERTH_PLUGIN_BENCH_CPUPROFILE set, the
// process writes a CPU profile to
// <that path>.<pid> from its start until PROFILE_STOP runs.
//
// It must never be installed in a plugins directory of a real host.
package main
