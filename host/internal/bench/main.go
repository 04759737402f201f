package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/daemon"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
)

// Result is what one run measured.
type Result struct {
	Time      time.Time `json:"time"`
	GoVersion string    `json:"go_version"`
	CPUs      int       `json:"cpus"`
	Jobs      int       `json:"jobs"`
	Workers   int       `json:"workers"`
	// Jobs per second.
	RawEnqueue   float64 `json:"raw_enqueue_per_s"`
	RawProcess   float64 `json:"raw_process_per_s"`
	BerthProcess float64 `json:"berth_process_per_s"`
	// BerthProcess / RawProcess.
	ProcessRatio float64 `json:"process_ratio"`
}

func main() {
	n := flag.Int("n", 5000, "jobs per measurement")
	workers := flag.Int("workers", 10, "worker pool concurrency")
	out := flag.String("out", "", "write the results as JSON to this file")
	flag.String("plugins", "", "unused; the bench builds its own no-op plugin")
	timeout := flag.Duration("timeout", 2*time.Minute, "bound of each measurement")
	flag.Parse()
	if err := run(*n, *workers, *out, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n, workers int, out string, timeout time.Duration) error {
	tmp, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	addr, stop, err := startRedis(tmp)
	if err != nil {
		return err
	}
	defer stop()
	plugins := filepath.Join(tmp, "plugins")
	if err := buildPlugin(plugins); err != nil {
		return err
	}
	pool := &redis.Pool{MaxIdle: 64, Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr) }}
	defer pool.Close()

	res := Result{Time: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Jobs: n, Workers: workers}
	fmt.Printf("berth bench: %d no-op jobs, %d workers, redis-server on %s, %d CPUs\n\n", n, workers, addr, res.CPUs)
	if res.RawEnqueue, res.RawProcess, err = raw(pool, n, workers, timeout); err != nil {
		return fmt.Errorf("raw gocraft/work: %w", err)
	}
	if res.BerthProcess, err = berth(addr, pool, plugins, tmp, n, workers, timeout); err != nil {
		return fmt.Errorf("berth: %w", err)
	}
	res.ProcessRatio = res.BerthProcess / res.RawProcess
	fmt.Printf("%-44s %12s %8s\n", "measurement", "jobs/s", "ratio")
	fmt.Printf("%-44s %12.0f %8s\n", "raw gocraft/work enqueue (1 client)", res.RawEnqueue, "")
	fmt.Printf("%-44s %12.0f %8s\n", "raw gocraft/work processing (baseline)", res.RawProcess, "1.00")
	fmt.Printf("%-44s %12.0f %8.2f\n", "berth processing (plugin + status tracking)", res.BerthProcess, res.ProcessRatio)
	if out != "" {
		raw, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(out, append(raw, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("\nresults written to %s\n", out)
	}
	return nil
}

// startRedis starts a redis-server on a free loopback port.
func startRedis(dir string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server (run `make deps` to install it): %w", err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := redis.Dial("tcp", addr); err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return addr, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not answer", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func buildPlugin(dir string) error {
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "fixture"), "./host/internal/testkit/plugintest/fixture").CombinedOutput()
	if err != nil {
		return fmt.Errorf("build the no-op plugin: %v\n%s", err, out)
	}
	return nil
}

type rawContext struct{}

// raw enqueues n jobs from one client, then processes them with a no-op
// handler.
func raw(pool *redis.Pool, n, workers int, timeout time.Duration) (enqueue, process float64, err error) {
	const ns = "{bench-raw}"
	enq := work.NewEnqueuer(ns, pool)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := enq.Enqueue("NOOP", map[string]any{"i": i}); err != nil {
			return 0, 0, err
		}
	}
	enqueue = float64(n) / time.Since(start).Seconds()
	var done atomic.Int64
	wp := work.NewWorkerPool(rawContext{}, uint(workers), ns, pool)
	wp.JobWithOptions("NOOP", work.JobOptions{MaxFails: 1, SkipDead: true}, func(*work.Job) error {
		done.Add(1)
		return nil
	})
	start = time.Now()
	wp.Start()
	defer wp.Stop()
	for deadline := start.Add(timeout); done.Load() < int64(n); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("processed %d of %d within %s", done.Load(), n, timeout)
		}
	}
	return enqueue, float64(n) / time.Since(start).Seconds(), nil
}

// berth queues n NOOP jobs with their stats, starts a host and waits until
// every one is Success.
func berth(addr string, pool *redis.Pool, plugins, tmp string, n, workers int, timeout time.Duration) (float64, error) {
	const ns = "bench-berth"
	ctx := context.Background()
	st := store.New(pool, store.Options{Namespace: ns})
	ids := make([]string, n)
	for i := range ids {
		now := st.Now()
		s := &job.Stats{ID: job.NewID(), Name: "NOOP", Kind: job.Generic, Status: job.Pending,
			EnqueueTime: now, UpdateTime: now, Revision: now, Parameters: job.Parameters{"i": i}}
		s.RefLink = job.RefLink(s.ID)
		if err := st.Create(ctx, s); err != nil {
			return 0, err
		}
		ids[i] = s.ID
	}
	cfg := config.Default()
	cfg.WorkerPool.RedisPool.RedisURL = "redis://" + addr
	cfg.WorkerPool.RedisPool.Namespace = ns
	cfg.WorkerPool.Workers = workers
	cfg.PluginsDir = plugins
	cfg.Secret = "bench"
	cfg.JobLoggers = []config.Logger{{Name: config.LoggerFile, Level: "INFO", Settings: map[string]any{config.SettingBaseDir: filepath.Join(tmp, "logs")}}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	h := daemon.New(daemon.Options{Config: cfg, Listener: l, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr})})
	start := time.Now()
	if err := h.Start(ctx); err != nil {
		return 0, err
	}
	defer h.Stop()
	keys := st.Keys()
	for deadline := start.Add(timeout); ; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not done within %s", timeout)
		}
		c := pool.Get()
		left, err := redis.Int(c.Do("LLEN", keys.Jobs("NOOP")))
		if err != nil || left > 0 {
			c.Close()
			continue
		}
		for _, id := range ids {
			_ = c.Send("HGET", keys.Stats(id), "status")
		}
		_ = c.Flush()
		final := 0
		for range ids {
			if s, _ := redis.String(c.Receive()); job.Status(s).Final() {
				final++
			}
		}
		c.Close()
		if final == n {
			return float64(n) / time.Since(start).Seconds(), nil
		}
	}
}
