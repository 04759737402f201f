// Command bench measures Berth against raw gocraft/work, on one real
// redis-server that it starts itself, in one run: processing throughput of
// no-op jobs (Berth through a real plugin process, with full status
// tracking). It prints each Berth figure as a ratio to the raw figure and
// writes the results as JSON. `make bench` runs it.
package main
