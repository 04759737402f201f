package main

import (
	"fmt"
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

func (base) MaxFails() uint    { return 1 }
func (base) ShouldRetry() bool { return false }

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

// chatty logs "lines" lines and checks in "checkins" times, "gap_ms"
// apart: a job that talks.
type chatty struct{ base }

func (chatty) Run(ctx sdk.Context, p sdk.Parameters) error {
	lines, _ := p["lines"].(float64)
	checkins, _ := p["checkins"].(float64)
	gap, _ := p["gap_ms"].(float64)
	for i := range int(lines) {
		ctx.Logger().Info("working", "line", i)
	}
	for i := range int(checkins) {
		if i > 0 && gap > 0 {
			time.Sleep(time.Duration(gap * float64(time.Millisecond)))
		}
		if err := ctx.Checkin("step " + strconv.Itoa(i+1)); err != nil {
			return err
		}
	}
	return nil
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
	jobs := sdk.Jobs{"NOOP": sdk.Typed[sdk.Parameters](noop{}), "STAMP": sdk.Typed[sdk.Parameters](stamp{}),
		"HOLD": sdk.Typed[sdk.Parameters](hold{}), "PROFILE_STOP": sdk.Typed[sdk.Parameters](profileStop{}),
		"CHATTY": sdk.Typed[sdk.Parameters](chatty{})}
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
	if err := sdk.Serve(jobs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
