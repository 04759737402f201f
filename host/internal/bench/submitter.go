package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/berth-dev/berth/host/internal/job"
)

// envSubmitter makes the bench binary a submitter: a child process that
// posts jobs to a host from 8 clients and prints what it measured, so that
// the bench process (where the host runs) spends nothing on clients.
const envSubmitter = "BERTH_BENCH_SUBMITTER"

// submitterArgs is what the child is asked to do.
type submitterArgs struct {
	URL     string `json:"url"`
	Jobs    int    `json:"jobs"`
	Clients int    `json:"clients"`
}

// submitterResult is what it prints.
type submitterResult struct {
	Rate  float64 `json:"rate"`
	Error string  `json:"error,omitempty"`
}

// runSubmitter is the child's main; it reports whether it was one.
func runSubmitter() bool {
	spec := os.Getenv(envSubmitter)
	if spec == "" {
		return false
	}
	var a submitterArgs
	res := submitterResult{}
	if err := json.Unmarshal([]byte(spec), &a); err != nil {
		res.Error = err.Error()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		api := newAPIClient()
		rt, _, err := concurrently(ctx, a.Clients, a.Jobs, func(i int) error {
			_, err := api.submit(ctx, a.URL, submitBody("NOOP", job.Parameters{"i": i}, 0))
			return err
		})
		cancel()
		res.Rate = rt
		if err != nil {
			res.Error = err.Error()
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	return true
}

// submitFromChild runs a submitter against host h and returns its rate
// and the CPU the host's processes used meanwhile.
func (b *bench) submitFromChild(ctx context.Context, h *berthHost, jobs, clients int) (float64, cpuUse, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, cpuUse{}, err
	}
	spec, _ := json.Marshal(submitterArgs{URL: h.url, Jobs: jobs, Clients: clients})
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), envSubmitter+"="+string(spec))
	meter := b.cpuMeter(h.d.PluginPIDs())
	out, err := cmd.Output()
	use := meter.stop()
	if err != nil {
		return 0, cpuUse{}, fmt.Errorf("submitter: %w", err)
	}
	var res submitterResult
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, cpuUse{}, fmt.Errorf("submitter: %w: %q", err, out)
	}
	if res.Error != "" {
		return 0, cpuUse{}, fmt.Errorf("submitter: %s", res.Error)
	}
	return res.Rate, use, nil
}

// submissionCPUMetric is the CPU of one REST submission in the host, its
// plugin and Redis, with the clients in another process.
func submissionCPUMetric(use cpuUse, jobs int, runs int) *metric {
	per := float64((use.Bench + use.Plugins + use.Redis).Microseconds()) / float64(jobs)
	m := &metric{Part: 3, Key: "berth.submit_cpu", Label: "CPU per REST submission, host + plugin + redis", Unit: "us",
		Berth: &figure{Value: per, Runs: runs, PerRunCount: jobs / max(runs, 1)}}
	m.judge("<= 250 us (Harbor's, measured by the issue)", per <= 250)
	return m
}
