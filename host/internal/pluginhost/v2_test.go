package pluginhost_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/sdk/proto"
)

func TestOutcomes(t *testing.T) {
	t.Parallel()
	b := setup(t, "features", "fixture")
	ctx := context.Background()
	tests := []struct {
		name, job string
		params    map[string]any
		want      pluginhost.RunResult
	}{
		{"Output", "OUTPUT", map[string]any{"value": map[string]any{"copied": 3.0}},
			pluginhost.RunResult{Kind: pluginhost.RunSucceeded, Output: []byte(`{"copied":3}`)}},
		{"NoOutput", "NOOP", nil, pluginhost.RunResult{Kind: pluginhost.RunSucceeded}},
		{"Permanent", "PERMANENT", nil, pluginhost.RunResult{Kind: pluginhost.RunFailedPermanently, Err: "wrong password"}},
		{"Snooze", "SNOOZE", map[string]any{"times": 1, "seconds": 30},
			pluginhost.RunResult{Kind: pluginhost.RunSnoozed, Err: "not ready (run 1)", Snooze: 30 * time.Second}},
		{"Error", "FLAKY", map[string]any{"succeed_on": 2}, pluginhost.RunResult{Kind: pluginhost.RunFailed, Err: "flaky attempt 1 fails"}},
		{"DecodeFailureIsPermanent", "TYPED", map[string]any{"count": "three"}, pluginhost.RunResult{Kind: pluginhost.RunFailedPermanently,
			Err: `the parameters do not decode: parameter "count" must be a whole number, got string`}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := b.host.Run(ctx, pluginhost.RunRequest{Name: tc.job, JobID: fmt.Sprintf("%024x", 100+i), Parameters: params(t, tc.params)})
			if err != nil || res.Kind != tc.want.Kind || res.Err != tc.want.Err || string(res.Output) != string(tc.want.Output) || res.Snooze != tc.want.Snooze {
				t.Fatalf("Run = %+v (output %s), %v; want %+v", res, res.Output, err, tc.want)
			}
		})
	}
}

// TestOneSessionCarriesManyRunsInOrder runs 40 talkative jobs at once on
// one plugin process: each job's lines and check-ins arrive complete and
// in order, whatever the others do.
func TestOneSessionCarriesManyRunsInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, "features")
	const runs, lines, checkins = 40, 200, 20
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.host.Run(context.Background(), pluginhost.RunRequest{Name: "CHATTY", JobID: fmt.Sprintf("%024x", 1000+i),
				Parameters: params(t, map[string]any{"lines": lines, "checkins": checkins})})
			if err == nil && res.Kind != pluginhost.RunSucceeded {
				err = fmt.Errorf("%+v", res)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	for i := range runs {
		id := fmt.Sprintf("%024x", 1000+i)
		logs, cis := b.rec.logs[id], b.rec.checkIns[id]
		if len(logs) != lines || len(cis) != checkins {
			t.Fatalf("job %s: %d lines and %d check-ins, want %d and %d", id, len(logs), len(cis), lines, checkins)
		}
		for n, l := range logs {
			if want := fmt.Sprintf("LOG_LEVEL_INFO line n=%d", n); l != want {
				t.Fatalf("job %s: line %d is %q, want %q", id, n, l, want)
			}
		}
		for n, c := range cis {
			if want := fmt.Sprintf("step %d", n+1); c != want {
				t.Fatalf("job %s: check-in %d is %q, want %q", id, n, c, want)
			}
		}
	}
	if len(b.host.PIDs()) != 1 {
		t.Fatalf("pids %v", b.host.PIDs())
	}
}

// Check-ins that come within the window are recorded in one call, all of
// them and in order, before the outcome; a check-in of a job that then
// goes quiet is recorded once the window has passed, while the job runs.
func TestCheckinsAreRecordedInBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, "features")
	const checkins = 30
	id := fmt.Sprintf("%024x", 7)
	res, err := b.host.Run(context.Background(), pluginhost.RunRequest{Name: "CHATTY", JobID: id,
		Parameters: params(t, map[string]any{"checkins": checkins})})
	if err != nil || res.Kind != pluginhost.RunSucceeded {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	b.rec.mu.Lock()
	calls, got := b.rec.calls[id], b.rec.checkIns[id]
	b.rec.mu.Unlock()
	if len(got) != checkins || got[0] != "step 1" || got[checkins-1] != fmt.Sprintf("step %d", checkins) {
		t.Fatalf("check-ins %q: want step 1 to step %d", got, checkins)
	}
	if calls >= checkins/2 {
		t.Errorf("%d check-ins back to back took %d calls: they were not batched", checkins, calls)
	}

	demo := setup(t, "demo")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := demo.host.Run(ctx, pluginhost.RunRequest{Name: "DEMO", JobID: fmt.Sprintf("%024x", 8),
			Parameters: params(t, map[string]any{"image": "demo", "hold_seconds": 60})})
		done <- err
	}()
	want := fmt.Sprintf("%024x progress data: %%60", 8)
	for deadline := time.After(10 * time.Second); ; {
		select {
		case got := <-demo.rec.notify:
			if got != want {
				continue
			}
		case err := <-done:
			t.Fatalf("Run ended (%v) before its check-ins were recorded", err)
		case <-deadline:
			t.Fatal("the check-ins of a job that holds were not recorded")
		}
		break
	}
	cancel()
	<-done
}

// load starts the plugins of dir with options changed by mutate.
func load(t *testing.T, dir string, mutate func(*pluginhost.Options)) (*pluginhost.Host, *recorder, error) {
	t.Helper()
	rec := newRecorder()
	opts := pluginhost.Options{Dir: dir, Callbacks: rec, StartTimeout: 10 * time.Second}
	if mutate != nil {
		mutate(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := pluginhost.Load(ctx, opts)
	if err == nil {
		t.Cleanup(h.Close)
	}
	return h, rec, err
}

func TestPluginConfigReachesItsPluginOnly(t *testing.T) {
	t.Parallel()
	dir := plugintest.Dir(t, "features", "demo")
	for _, key := range []string{"features", "CONFIG"} { // by file name, or by one of its job names
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			h, rec, err := load(t, dir, func(o *pluginhost.Options) {
				o.Config = map[string][]byte{key: []byte(`{"greeting":"hello","token":"s3cret-token"}`)}
			})
			if err != nil {
				t.Fatal(err)
			}
			id := "00000000000000000000c0f1"
			if res, err := h.Run(context.Background(), pluginhost.RunRequest{Name: "CONFIG", JobID: id}); err != nil || res.Kind != pluginhost.RunSucceeded {
				t.Fatalf("Run = %+v, %v", res, err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if got := rec.checkIns[id]; len(got) != 1 || got[0] != "greeting=hello token_length=12" {
				t.Fatalf("check-ins %q", got)
			}
		})
	}
	t.Run("DeclarationsFollowTheConfiguration", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			config string
			want   uint
		}{{"", 2}, {`{"max_fails":7}`, 7}} {
			h, _, err := load(t, dir, func(o *pluginhost.Options) {
				if tc.config != "" {
					o.Config = map[string][]byte{"features": []byte(tc.config)}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if jt, ok := h.JobType("CONFIG"); !ok || jt.MaxFails != tc.want {
				t.Errorf("with configuration %q, CONFIG declares MaxFails %d, want %d", tc.config, jt.MaxFails, tc.want)
			}
		}
	})
	for _, tc := range []struct {
		name   string
		config map[string][]byte
		want   []string
	}{
		{"Refused", map[string][]byte{"features": []byte(`{"greeting":"refuse"}`)},
			[]string{"plugin " + filepath.Join(dir, "features"), `refused its section of plugin_config: setting "greeting" must not be "refuse"`}},
		{"UnknownSetting", map[string][]byte{"features": []byte(`{"greetings":"hi"}`)}, []string{`unknown setting "greetings"`}},
		{"WrongType", map[string][]byte{"features": []byte(`{"greeting":7}`)}, []string{`setting "greeting" must be a string, got number`}},
		{"NamesNoPlugin", map[string][]byte{"scanner": []byte(`{}`)}, []string{"plugin_config.scanner names no plugin file"}},
		{"TwoSectionsForOnePlugin", map[string][]byte{"features": []byte(`{}`), "CHATTY": []byte(`{}`)},
			[]string{`plugin_config has sections "features" and "CHATTY" for the same plugin: keep one`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := load(t, dir, func(o *pluginhost.Options) { o.Config = tc.config })
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows a value: %v", err)
			}
		})
	}
}

func TestAPluginOfAnotherProtocolIsRefusedByName(t *testing.T) {
	t.Parallel()
	dir := plugintest.Dir(t, "oldproto")
	_, _, err := load(t, dir, nil)
	if err == nil {
		t.Fatal("Load of a protocol 1 plugin succeeded")
	}
	for _, w := range []string{"plugin " + filepath.Join(dir, "oldproto"), "another Berth plugin protocol than this host's version 2", "rebuild it"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// TestDebugModeAndReattach starts the demo plugin by hand with
// BERTH_PLUGIN_DEBUG=1, as under a debugger, and points a host at it.
func TestDebugModeAndReattach(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(plugintest.Binary(t, "demo"))
	cmd.Env = append(os.Environ(), proto.DebugEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var value string
	for value == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the plugin printed no reattach line")
			}
			if _, v, found := strings.Cut(l, proto.ReattachEnv+"="); found {
				value = strings.Trim(v, "'")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no reattach line within 20s")
		}
	}
	reattach := map[string]proto.Reattach{}
	if err := json.Unmarshal([]byte(value), &reattach); err != nil {
		t.Fatalf("reattach line %q: %v", value, err)
	}
	// The plugins directory may be empty: the debugged plugin is named.
	h, rec, err := load(t, t.TempDir(), func(o *pluginhost.Options) { o.Reattach = reattach })
	if err != nil {
		t.Fatal(err)
	}
	id := "00000000000000000000dbg1"
	res, err := h.Run(context.Background(), pluginhost.RunRequest{Name: "DEMO", JobID: id,
		Parameters: params(t, map[string]any{"image": "demo", "hold_seconds": 0})})
	if err != nil || res.Kind != pluginhost.RunSucceeded {
		t.Fatalf("Run on the reattached plugin = %+v, %v", res, err)
	}
	rec.mu.Lock()
	n := len(rec.checkIns[id])
	rec.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d check-ins from the reattached plugin", n)
	}
	// Closing the host leaves a debugged plugin running.
	h.Close()
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the debugged plugin is gone after the host closed: %v", err)
	}
}
