package pluginhost_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
	"github.com/berth-dev/berth/sdk/proto"
)

// recorder records the callbacks of running jobs.
type recorder struct {
	mu       sync.Mutex
	calls    map[string]int // Checkin calls per job
	checkIns map[string][]string
	logs     map[string][]string
	launched []string
	notify   chan string // "<job id> <check-in>"
}

func newRecorder() *recorder {
	return &recorder{calls: map[string]int{}, checkIns: map[string][]string{}, logs: map[string][]string{}, notify: make(chan string, 100)}
}

func (r *recorder) Checkin(_ context.Context, id string, msgs ...string) error {
	r.mu.Lock()
	r.calls[id]++
	r.checkIns[id] = append(r.checkIns[id], msgs...)
	r.mu.Unlock()
	for _, msg := range msgs {
		select {
		case r.notify <- id + " " + msg:
		default:
		}
	}
	return nil
}

func (r *recorder) Log(_ context.Context, id string, entries []*proto.LogEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range entries {
		r.logs[id] = append(r.logs[id], e.GetLevel().String()+" "+e.GetMessage())
	}
	return nil
}

func (r *recorder) LaunchJob(_ context.Context, parent string, req []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.launched = append(r.launched, parent+" "+string(req))
	return []byte(`{"id":"00000000000000000000abcd"}`), nil
}

func (r *recorder) waitCheckin(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case got := <-r.notify:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("no check-in %q within 20s", want)
		}
	}
}

type bundle struct {
	host *pluginhost.Host
	rec  *recorder
	log  *procs.Buffer
}

func setup(t *testing.T, plugins ...string) *bundle {
	t.Helper()
	b := &bundle{rec: newRecorder(), log: &procs.Buffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := pluginhost.Load(ctx, pluginhost.Options{
		Dir:       plugintest.Dir(t, plugins...),
		Callbacks: b.rec,
		Logger:    hclog.New(&hclog.LoggerOptions{Output: b.log, Level: hclog.Debug}),
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(h.Close)
	b.host = h
	return b
}

func params(t *testing.T, p map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	b := setup(t, "demo", "fixture")
	got := b.host.JobTypes()
	var names []string
	for _, jt := range got {
		names = append(names, jt.Name)
	}
	if want := "BAD_STDERR,CLOCK,DEMO,DIGEST,FLAKY,HANG,NOOP,PRINT,PROPS,SOLO,SPAWN"; strings.Join(names, ",") != want {
		t.Fatalf("job names = %v, want %s", names, want)
	}
	demo, ok := b.host.JobType("DEMO")
	if !ok || demo.MaxFails != 3 || !demo.ShouldRetry || demo.Version != "2.0.0" || filepath.Base(demo.Plugin) != "demo" ||
		!demo.Validates || !strings.Contains(string(demo.ParamsSchema), `"hold_seconds"`) {
		t.Fatalf("DEMO = %+v", demo)
	}
	// Defaults: the host's retry rules; a schema and no Validate.
	b = setup(t, "features")
	typed, _ := b.host.JobType("TYPED")
	if typed.MaxFails != 0 || !typed.ShouldRetry || typed.Validates || len(typed.ParamsSchema) == 0 {
		t.Fatalf("TYPED = %+v", typed)
	}
	if snooze, _ := b.host.JobType("SNOOZE"); snooze.MaxSnoozes != 3 || snooze.ParamsSchema != nil || snooze.Validates {
		t.Fatalf("SNOOZE = %+v", snooze)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	b := setup(t, "demo")
	ctx := context.Background()
	if err := b.host.Validate(ctx, "DEMO", params(t, map[string]any{"image": "demo"})); err != nil {
		t.Fatalf("valid params: %v", err)
	}
	err := b.host.Validate(ctx, "DEMO", params(t, map[string]any{"image": "busybox"}))
	var verr *pluginhost.ValidationError
	if !errors.As(err, &verr) || !strings.Contains(verr.Reason, `must start with "demo"`) {
		t.Fatalf("invalid params: err = %v, want a ValidationError naming the prefix", err)
	}
	// The schema is checked by the host, with messages naming the parameter.
	err = b.host.Validate(ctx, "DEMO", params(t, map[string]any{"image": "demo", "hold_seconds": 4000}))
	if !errors.As(err, &verr) || verr.Reason != `parameter "hold_seconds" must be a number from 0 to 3600, got 4000` {
		t.Fatalf("out of range: err = %v", err)
	}
	if err := b.host.Validate(ctx, "NOPE", nil); !errors.Is(err, pluginhost.ErrUnknownJob) {
		t.Fatalf("unknown job: err = %v, want ErrUnknownJob", err)
	}
}

// TestValidateSkipsThePluginWhenTheSchemaDecides stops the plugin process
// (SIGSTOP): a job type without a Validate of its own is still checked,
// by the host alone, while one with a Validate needs the plugin.
func TestValidateSkipsThePluginWhenTheSchemaDecides(t *testing.T) {
	t.Parallel()
	b := setup(t, "features", "fixture")
	for _, pid := range b.host.PIDs() {
		stop(t, pid)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.host.Validate(ctx, "TYPED", params(t, map[string]any{"count": 3})); err != nil {
		t.Fatalf("valid TYPED params with the plugin stopped: %v", err)
	}
	err := b.host.Validate(ctx, "TYPED", params(t, map[string]any{"count": 11, "extra": true}))
	var verr *pluginhost.ValidationError
	if !errors.As(err, &verr) || !strings.Contains(verr.Reason, `parameter "count" must be a whole number from 1 to 10, got 11`) ||
		!strings.Contains(verr.Reason, `unknown parameter "extra"`) {
		t.Fatalf("invalid TYPED params: err = %v", err)
	}
	// A job whose plugin must be asked waits for it: here, until ctx ends.
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	if err := b.host.Validate(short, "SPAWN", params(t, map[string]any{"name": "x"})); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SPAWN with the plugin stopped: %v, want the call to wait for it", err)
	}
}

// stop stops process pid (SIGSTOP) until the test ends.
func stop(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	// Every thread of the process stops only once it is scheduled.
	for deadline := time.Now().Add(10 * time.Second); !procs.Stopped(pid); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the plugin process did not stop")
		}
	}
}

func TestMessagesLargerThanGRPCDefault(t *testing.T) {
	t.Parallel()
	b := setup(t, "demo")
	big := strings.Repeat("x", 10<<20) // gRPC's default limit is 4 MiB
	err := b.host.Validate(context.Background(), "DEMO", params(t, map[string]any{"image": "demo" + big}))
	if err != nil {
		t.Fatalf("Validate with 10 MiB of parameters: %v", err)
	}
}

func TestRunReportsCheckInsAndLogsInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, "demo")
	id := "0123456789abcdef01234567"
	res, err := b.host.Run(context.Background(), pluginhost.RunRequest{
		Name: "DEMO", JobID: id, Parameters: params(t, map[string]any{"image": "demo", "hold_seconds": 0, "log_lines": 500}),
	})
	if err != nil || res.Kind != pluginhost.RunSucceeded {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	if got := strings.Join(b.rec.checkIns[id], "|"); got != "progress data: %30|progress data: %60" {
		t.Fatalf("check-ins = %q", got)
	}
	logs := b.rec.logs[id]
	if len(logs) != 500+3 {
		t.Fatalf("got %d log lines, want 503: first %q", len(logs), logs[:min(3, len(logs))])
	}
	for i := 1; i <= 500; i++ {
		if want := fmt.Sprintf("LOG_LEVEL_INFO log line %d of 500", i); logs[i] != want {
			t.Fatalf("log line %d = %q, want %q", i, logs[i], want)
		}
	}
}

func TestPropertiesAndLaunchJob(t *testing.T) {
	t.Parallel()
	b := setup(t, "fixture")
	ctx := context.Background()
	res, err := b.host.Run(ctx, pluginhost.RunRequest{Name: "PROPS", JobID: "aaaaaaaaaaaaaaaaaaaaaaaa", Properties: map[string]string{"key": "v1"}})
	if err != nil || res.Kind != pluginhost.RunSucceeded {
		t.Fatalf("PROPS = %+v, %v", res, err)
	}
	res, err = b.host.Run(ctx, pluginhost.RunRequest{Name: "SPAWN", JobID: "bbbbbbbbbbbbbbbbbbbbbbbb",
		Parameters: params(t, map[string]any{"name": "DEMO", "parameters": map[string]any{"image": "demo"}})})
	if err != nil || res.Kind != pluginhost.RunSucceeded {
		t.Fatalf("SPAWN = %+v, %v", res, err)
	}
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	if got := b.rec.checkIns["aaaaaaaaaaaaaaaaaaaaaaaa"]; len(got) != 1 || got[0] != "key=v1 id=aaaaaaaaaaaaaaaaaaaaaaaa" {
		t.Fatalf("PROPS check-ins = %q", got)
	}
	if got := b.rec.checkIns["bbbbbbbbbbbbbbbbbbbbbbbb"]; len(got) != 1 || got[0] != "launched 00000000000000000000abcd" {
		t.Fatalf("SPAWN check-ins = %q", got)
	}
	want := `bbbbbbbbbbbbbbbbbbbbbbbb {"name":"DEMO","parameters":{"image":"demo"},"metadata":{"kind":"Generic","unique":false}}`
	if len(b.rec.launched) != 1 || b.rec.launched[0] != want {
		t.Fatalf("launched = %q, want %q", b.rec.launched, want)
	}
}

func TestSignalEndsTheRunAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cmd  proto.StopReason
		want string
	}{
		{"Stop", proto.StopReason_STOP_REASON_STOP, "DEMO stop"},
		{"Cancel", proto.StopReason_STOP_REASON_CANCEL, "DEMO cancel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "demo")
			id := "0000000000000000000000" + map[string]string{"Stop": "01", "Cancel": "02"}[tc.name]
			done := make(chan pluginhost.RunResult, 1)
			go func() {
				res, err := b.host.Run(context.Background(), pluginhost.RunRequest{Name: "DEMO", JobID: id,
					Parameters: params(t, map[string]any{"image": "demo", "hold_seconds": 3600})})
				if err != nil {
					res.Err = "transport: " + err.Error()
				}
				done <- res
			}()
			b.rec.waitCheckin(t, id+" progress data: %60")
			found, err := b.host.Signal(context.Background(), "DEMO", id, tc.cmd)
			if err != nil || !found {
				t.Fatalf("Signal = %v, %v", found, err)
			}
			select {
			case res := <-done:
				if !strings.Contains(res.Err, tc.want) {
					t.Fatalf("Run error = %q, want it to contain %q", res.Err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s of the signal")
			}
			found, err = b.host.Signal(context.Background(), "DEMO", id, tc.cmd)
			if err != nil || found {
				t.Fatalf("Signal after the end = %v, %v; want not found", found, err)
			}
		})
	}
}

func TestCancelledRunContextEndsTheCall(t *testing.T) {
	t.Parallel()
	b := setup(t, "demo")
	id := "000000000000000000000003"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := b.host.Run(ctx, pluginhost.RunRequest{Name: "DEMO", JobID: id,
			Parameters: params(t, map[string]any{"image": "demo", "hold_seconds": 3600})})
		done <- err
	}()
	b.rec.waitCheckin(t, id+" progress data: %60")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestCrashFailsTheRunAndThePluginComesBack(t *testing.T) {
	t.Parallel()
	b := setup(t, "demo")
	before := b.host.PIDs()
	_, err := b.host.Run(context.Background(), pluginhost.RunRequest{Name: "DEMO", JobID: "000000000000000000000004",
		Parameters: params(t, map[string]any{"image": "demo", "crash": true})})
	if !errors.Is(err, pluginhost.ErrPluginFailed) {
		t.Fatalf("Run of a crashing job: err = %v, want ErrPluginFailed", err)
	}
	// The next job waits for the restart and runs.
	res, err := b.host.Run(context.Background(), pluginhost.RunRequest{Name: "DEMO", JobID: "000000000000000000000005",
		Parameters: params(t, map[string]any{"image": "demo", "hold_seconds": 0})})
	if err != nil || res.Kind != pluginhost.RunSucceeded {
		t.Fatalf("Run after the crash = %+v, %v", res, err)
	}
	after := b.host.PIDs()
	if len(after) != 1 || after[0] == before[0] {
		t.Fatalf("plugin pids before %v, after %v: want a new process", before, after)
	}
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	if logs := strings.Join(b.rec.logs["000000000000000000000004"], "\n"); !strings.Contains(logs, "crashing the plugin process as asked") {
		t.Fatalf("the crashing job's last log line did not reach the host:\n%s", logs)
	}
	if !strings.Contains(b.log.String(), "plugin process exited unexpectedly") {
		t.Fatalf("the host did not log the crash")
	}
}

func TestPoisonedStderrCannotCrashTheHost(t *testing.T) {
	t.Parallel()
	b := setup(t, "fixture")
	ctx := context.Background()
	if err := b.host.Validate(ctx, "BAD_STDERR", nil); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	res, err := b.host.Run(ctx, pluginhost.RunRequest{Name: "BAD_STDERR", JobID: "000000000000000000000006"})
	if err != nil || res.Kind != pluginhost.RunSucceeded {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	// Every poison line is in the host's log, as text.
	deadline := time.Now().Add(5 * time.Second)
	for {
		logged := b.log.String()
		if strings.Contains(logged, `{"@message":1}`) && strings.Contains(logged, `{"@message":{"nested":true}}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("poison lines not in the host log:\n%s", logged)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPluginStdoutAndStderrReachTheHostLog(t *testing.T) {
	t.Parallel()
	b := setup(t, "fixture")
	res, err := b.host.Run(context.Background(), pluginhost.RunRequest{Name: "PRINT", JobID: "000000000000000000000007",
		Parameters: params(t, map[string]any{"text": "hello from the plugin"})})
	if err != nil || res.Kind != pluginhost.RunSucceeded {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		logged := b.log.String()
		if strings.Contains(logged, "plugin.fixture: stdout: hello from the plugin: stream=stdout") &&
			strings.Contains(logged, "plugin.fixture: stderr: hello from the plugin: stream=stderr") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin's prints are not in the host log:\n%s", logged)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPluginExitsWhenItsParentDies starts the demo plugin under a shell,
// without the host's parent-death signal, kills the shell with SIGKILL and
// checks that the plugin notices and exits by itself.
func TestPluginExitsWhenItsParentDies(t *testing.T) {
	t.Parallel()
	sh := exec.Command("sh", "-c", `"$PLUGIN" & echo $!; wait`)
	sh.Env = append(os.Environ(), "PLUGIN="+plugintest.Binary(t, "demo"),
		proto.Handshake.MagicCookieKey+"="+proto.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=2", "PLUGIN_MIN_PORT=0", "PLUGIN_MAX_PORT=0")
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sh.Process.Kill(); _ = sh.Wait() })
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		t.Fatalf("read the plugin's pid: %v", err)
	}
	// Wait for the handshake line: the plugin is serving.
	line := make([]byte, 512)
	if _, err := out.Read(line); err != nil {
		t.Fatalf("the plugin did not start: %v", err)
	}
	if err := sh.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = sh.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for procs.Alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("plugin pid %d outlived its parent by 5s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "README"), []byte("not a plugin"), 0o644); err != nil {
		t.Fatal(err)
	}
	notPlugin := t.TempDir()
	if err := os.WriteFile(filepath.Join(notPlugin, "script"), []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		want []string
	}{
		{"Missing", filepath.Join(empty, "nope"), []string{"read plugins_dir", "make build"}},
		{"NoExecutable", empty, []string{"no executable plugin"}},
		{"DuplicateName", plugintest.Dir(t, "demo", "dupdemo"), []string{`job name "DEMO" is served by both`, "/demo and ", "/dupdemo"}},
		{"NothingStarts", notPlugin, []string{"no plugin in " + notPlugin + " started", "plugin " + filepath.Join(notPlugin, "script"), "start"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			h, err := pluginhost.Load(ctx, pluginhost.Options{Dir: tc.dir, Callbacks: newRecorder(), StartTimeout: 3 * time.Second})
			if err == nil {
				h.Close()
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A file that does not start as a plugin is logged and left out; the
// other plugins are served.
func TestAStrayExecutableIsLeftOut(t *testing.T) {
	t.Parallel()
	dir := plugintest.Dir(t, "demo")
	stray := filepath.Join(dir, "stray")
	if err := os.WriteFile(stray, []byte("#!/bin/sh\necho not a plugin\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := &procs.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := pluginhost.Load(ctx, pluginhost.Options{Dir: dir, Callbacks: newRecorder(), StartTimeout: 3 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Info})})
	if err != nil {
		t.Fatalf("Load with a stray executable beside DEMO: %v", err)
	}
	defer h.Close()
	if _, ok := h.JobType("DEMO"); !ok {
		t.Fatal("DEMO is not served")
	}
	if f := h.Failed(); len(f) != 1 || f[0].Path != stray || !strings.Contains(f[0].Err, "start") {
		t.Fatalf("Failed = %+v, want the stray file and why", f)
	}
	if !strings.Contains(log.String(), "plugin left out: it did not start") || !strings.Contains(log.String(), stray) {
		t.Fatalf("the host did not log the stray file:\n%s", log.String())
	}
}

func TestCloseStopsEveryPlugin(t *testing.T) {
	t.Parallel()
	b := setup(t, "demo", "fixture")
	pids := b.host.PIDs()
	if len(pids) != 2 {
		t.Fatalf("pids = %v", pids)
	}
	b.host.Close()
	b.host.Close() // twice is fine
	for _, pid := range pids {
		if procs.Alive(pid) {
			t.Errorf("plugin pid %d still alive after Close", pid)
		}
	}
}

// TestPluginsDieWithAKilledHost runs a host in a child process (this test
// binary, see TestMain), kills it with SIGKILL and checks that its plugins
// go too.
func TestPluginsDieWithAKilledHost(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PLUGINHOST_TEST_CHILD_DIR="+plugintest.Dir(t, "demo", "fixture"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var line string
	buf := make([]byte, 256)
	for !strings.Contains(line, "\n") {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("child host: %v (read %q)", err, line)
		}
		line += string(buf[:n])
	}
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("child host printed %q", line)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 2 {
		t.Fatalf("child host printed pids %v", pids)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for procs.Alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("plugin pid %d outlived its SIGKILLed host by 5s", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("PLUGINHOST_TEST_CHILD_DIR"); dir != "" {
		runChildHost(dir)
		return
	}
	os.Exit(m.Run())
}

// runChildHost loads the plugins in dir, prints their pids and waits to be
// killed.
func runChildHost(dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := pluginhost.Load(ctx, pluginhost.Options{Dir: dir, Callbacks: newRecorder()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var s []string
	for _, pid := range h.PIDs() {
		s = append(s, strconv.Itoa(pid))
	}
	fmt.Println(strings.Join(s, " "))
	time.Sleep(time.Minute)
	os.Exit(1)
}
