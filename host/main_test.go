package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.Cleanup()
	os.Exit(code)
}

// binary builds the berth command once per test binary.
func binary(t *testing.T) string { return plugintest.Command(t, "host") }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type process struct {
	cmd  *exec.Cmd
	out  *procs.Buffer
	url  string
	done chan error
}

// start runs berth with env and waits until its API answers.
func start(t *testing.T, env ...string) *process {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(binary(t))
	cmd.Env = append(os.Environ(),
		"CORE_SECRET=s3cret", "JOB_SERVICE_PORT="+strconv.Itoa(port),
		"BERTH_PLUGINS_DIR="+plugintest.Dir(t, "demo"), "BERTH_SHUTDOWN_GRACE=2s")
	cmd.Env = append(cmd.Env, env...)
	p := &process{cmd: cmd, out: &procs.Buffer{}, url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("berth output:\n%s", p.out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url + "/api/v1/stats")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("berth exited before serving: %v\n%s", err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth did not serve within 20s:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// children lists the pids whose parent is pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(raw)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) && fields[0] != "Z" {
			out = append(out, n)
		}
	}
	return out
}

func waitGone(t *testing.T, pids []int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, pid := range pids {
		for procs.Alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still alive after %s", pid, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// submit submits a DEMO job that holds for an hour and returns its ID.
func submit(t *testing.T, p *process) string {
	t.Helper()
	body := `{"job":{"name":"DEMO","parameters":{"image":"demo","hold_seconds":3600},"metadata":{"kind":"Generic"}}}`
	req, _ := http.NewRequest(http.MethodPost, p.url+"/api/v1/jobs", strings.NewReader(body))
	req.Header.Set("Authorization", "Harbor-Secret s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env job.Envelope
	if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&env) != nil || env.Job == nil {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	return env.Job.ID
}

// waitHolding waits until the DEMO job id runs and holds: its last
// check-in comes right before the hold.
func waitHolding(t *testing.T, p *process, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, p.url+"/api/v1/jobs/"+id, nil)
		req.Header.Set("Authorization", "Harbor-Secret s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var env job.Envelope
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || env.Job == nil {
			t.Fatalf("get %s: %d %v", id, resp.StatusCode, err)
		}
		if env.Job.Status == job.Running && env.Job.CheckIn == "progress data: %60" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s does not hold within 20s: %+v", id, env.Job)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSIGTERMStopsGracefully(t *testing.T) {
	t.Parallel()
	srv := redistest.Shared(t)
	p := start(t, "JOB_SERVICE_POOL_REDIS_URL="+srv.URL(), "JOB_SERVICE_POOL_REDIS_NAMESPACE="+srv.Namespace(t))
	id := submit(t, p)
	plugins := children(t, p.cmd.Process.Pid)
	if len(plugins) != 1 {
		t.Fatalf("berth has children %v, want its one plugin", plugins)
	}
	waitHolding(t, p, id)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("berth exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("berth did not exit within 20s of SIGTERM")
	}
	waitGone(t, plugins, 5*time.Second)
	out := p.out.String()
	for _, want := range []string{"shutting down", "running jobs did not finish within the grace period", "berth stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestSIGKILLLeavesNoPluginBehind(t *testing.T) {
	t.Parallel()
	p := start(t) // embedded backend
	if !strings.Contains(p.out.String(), "EMBEDDED in-memory Redis") {
		t.Fatalf("berth on the embedded backend does not say so:\n%s", p.out.String())
	}
	plugins := children(t, p.cmd.Process.Pid)
	if len(plugins) != 1 {
		t.Fatalf("berth has children %v", plugins)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, plugins, 5*time.Second)
}

func TestBadConfigIsAnErrorNamingTheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		file string
		want string
	}{
		{"BadEnvPort", []string{"JOB_SERVICE_PORT=abc"}, "", "JOB_SERVICE_PORT"},
		{"UnknownKey", nil, "porrt: 1\n", "porrt"},
		{"BadWorkers", nil, "worker_pool:\n  workers: 0\n", "worker_pool.workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{}
			if tc.file != "" {
				path := filepath.Join(t.TempDir(), "config.yml")
				if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-c", path)
			}
			cmd := exec.Command(binary(t), args...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
				t.Fatalf("exit code %d, want 1:\n%s", code, out)
			}
			first, _ := bufio.NewReader(bytes.NewReader(out)).ReadString('\n')
			if !strings.Contains(string(out), tc.want) || !strings.HasPrefix(first, "berth:") {
				t.Fatalf("output does not name %q:\n%s", tc.want, out)
			}
		})
	}
}

// TestAJobOfAKilledHostRunsOnAnother kills a host running a job with
// SIGKILL; another host's reaper finds the dead worker pool and queues the
// job again, and it runs there in a new revision.
func TestAJobOfAKilledHostRunsOnAnother(t *testing.T) {
	t.Parallel()
	srv := redistest.Shared(t)
	ns := srv.Namespace(t)
	a := start(t, "JOB_SERVICE_POOL_REDIS_URL="+srv.URL(), "JOB_SERVICE_POOL_REDIS_NAMESPACE="+ns)
	body := `{"job":{"name":"DEMO","parameters":{"image":"demo","hold_seconds":3600},"metadata":{"kind":"Generic"}}}`
	req, _ := http.NewRequest(http.MethodPost, a.url+"/api/v1/jobs", strings.NewReader(body))
	req.Header.Set("Authorization", "Harbor-Secret s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sub struct {
		Job struct {
			ID       string `json:"id"`
			Revision int64  `json:"revision"`
		} `json:"job"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sub); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	cfg := config.Default()
	cfg.WorkerPool.RedisPool.RedisURL = srv.URL()
	cfg.WorkerPool.RedisPool.Namespace = ns
	cfg.PluginsDir = plugintest.Dir(t, "demo")
	cfg.Secret = hosttest.Secret
	cfg.JobLoggers = []config.Logger{{Name: config.LoggerFile, Level: "INFO", Settings: map[string]any{config.SettingBaseDir: t.TempDir()}}}
	cfg.Reaper.Interval = config.Duration(500 * time.Millisecond)
	cfg.Reaper.DeadAfter = config.Duration(6 * time.Second)
	cfg.ShutdownGrace = config.Duration(time.Second)

	// Wait until A runs it, then kill A.
	b := hosttest.StartWith(t, cfg)
	first := b.WaitCheckin(t, sub.Job.ID, "progress data: %60", 20*time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again := b.Wait(t, sub.Job.ID, 40*time.Second, "a run in a new revision", func(s *job.Stats) bool {
		return s.Status == job.Running && s.Revision > first.Revision && s.CheckIn == "progress data: %60"
	})
	if again.ID != sub.Job.ID {
		t.Fatalf("the job changed ID: %s", again.ID)
	}
	if !strings.Contains(b.Log.String(), "a worker pool stopped beating; its jobs are queued again") {
		t.Fatalf("the reaper did not say what it did")
	}
}
