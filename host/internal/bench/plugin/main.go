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
package main

import (
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/sdk"
)

// Environment variables (BERTH_PLUGIN_ ones pass the host's filter).
const (
	envStamps  = "BERTH_PLUGIN_BENCH_STAMPS"
	envProfile = "BERTH_PLUGIN_BENCH_CPUPROFILE"
	envJobs    = "BERTH_PLUGIN_BENCH_JOBS"
)

var (
	reportOnce sync.Once
	reportConn net.Conn
	pid        = strconv.Itoa(os.Getpid())
)

// report sends one datagram; without a stamps address it does nothing.
func report(kind, id string, at time.Time) {
	reportOnce.Do(func() {
		if addr := os.Getenv(envStamps); addr != "" {
			reportConn, _ = net.Dial("udp", addr)
		}
	})
	if reportConn == nil {
		return
	}
	_, _ = reportConn.Write([]byte(kind + " " + id + " " + strconv.FormatInt(at.UnixNano(), 10) + " " + pid))
}

type base struct{}

func (base) MaxFails() uint                { return 1 }
func (base) ShouldRetry() bool             { return false }
func (base) Validate(sdk.Parameters) error { return nil }

type noop struct{ base }

func (noop) Run(sdk.Context, sdk.Parameters) error { return nil }

type stamp struct{ base }

func (stamp) Run(ctx sdk.Context, _ sdk.Parameters) error {
	report("run", ctx.JobID(), time.Now())
	return nil
}

type hold struct{ base }

func (hold) Run(ctx sdk.Context, p sdk.Parameters) error {
	report("run", ctx.JobID(), time.Now())
	secs, ok := p["hold_seconds"].(float64)
	if !ok {
		secs = 60
	}
	t := time.NewTimer(time.Duration(secs * float64(time.Second)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		report("done", ctx.JobID(), time.Now())
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type profileStop struct{ base }

func (profileStop) Run(sdk.Context, sdk.Parameters) error {
	pprof.StopCPUProfile()
	return nil
}

func main() {
	if path := os.Getenv(envProfile); path != "" {
		if f, err := os.Create(path + "." + pid); err == nil {
			_ = pprof.StartCPUProfile(f)
		}
	}
	jobs := sdk.Jobs{"NOOP": noop{}, "STAMP": stamp{}, "HOLD": hold{}, "PROFILE_STOP": profileStop{}}
	if only := os.Getenv(envJobs); only != "" {
		keep := map[string]bool{}
		for _, name := range strings.Split(only, ",") {
			keep[name] = true
		}
		for name := range jobs {
			if !keep[name] {
				delete(jobs, name)
			}
		}
	}
	sdk.Serve(jobs)
}
