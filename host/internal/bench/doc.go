// Command bench measures Berth against raw gocraft/work v0.5.1 on one real
// redis-server that it starts itself, in one run (`make bench`):
//
//  1. raw gocraft/work: enqueue from one client, processing of no-op jobs
//     with an in-process handler (the baseline);
//  2. Berth processing of no-op jobs through a real plugin process, with
//     full status tracking, and the CPU per job of every process;
//  3. submissions from 8 concurrent clients: raw enqueue, Berth's REST API
//     (auth, the JSON Schema or Validate of the plugin);
//  4. pickup latency under steady (1,000 jobs/s) and sparse (5 jobs/s) load,
//     on a fresh host and on one that has run a burst of -burst jobs; the
//     sparse load also while one long job and while half the workers'
//     long jobs run;
//  5. lateness of jobs scheduled 2 s ahead;
//  6. stop latency, on the job's host and across two hosts, with stops
//     sent after Run started, at the instant Running, and at random moments;
//  7. Redis commands per job (in a burst and at 5 jobs/s) and the idle load
//     of one host, fresh and after a burst;
//  8. the host's CPU per log line and per check-in of a plugin (CHATTY
//     jobs: silent, 100 lines, 10 check-ins, both);
//  9. the top functions of CPU profiles of the host and of the plugin;
//  10. the plugin protocol's run carried as a unary call, a stream per
//     job or one shared stream (./transport), to keep the cheapest.
//
// It prints each Berth figure next to the raw one of the same run, with the
// ratio, the counts and the target, and writes the results as JSON
// (-out) to compare across commits. Each part is bounded in time; a part
// that fails or runs out of time is reported and the run goes on. -quick
// makes a short run, -parts selects parts, -cpuprofile and
// -plugin-cpuprofile profile the bench process and part 2's plugin.
//
// The bench builds its own plugin (./plugin): NOOP, STAMP (reports when its
// Run starts), HOLD (waits for stop), CHATTY (logs and checks in) and
// PROFILE_STOP. Run it from the
// module root. Benchmarks report; tests check behaviour: no figure here is
// asserted by `make test`.
//
// It is a measuring tool run by `make bench`; nothing in the product
// imports it, and its figures are never asserted by tests.
package main
