package pluginhost_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

// copyPlugins returns a plugins directory holding copies (not links) of
// the named plugins, which a test may change, and their SHA-256s.
func copyPlugins(t *testing.T, names ...string) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	sums := map[string]string{}
	for _, name := range names {
		src, err := os.Open(plugintest.Binary(t, name))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(dst, h), src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
		sums[name] = fmt.Sprintf("%x", h.Sum(nil))
	}
	return dir, sums
}

// Plugin files can be pinned by SHA-256, and a file anyone may change is
// refused: such files are left out with an error that names them, the
// others are served.
func TestPluginIntegrity(t *testing.T) {
	t.Parallel()
	const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
	tests := []struct {
		name     string
		prepare  func(t *testing.T, dir string, sums map[string]string) (map[string]string, bool) // pins, require
		loadErr  string                                                                           // Load fails with it
		leftOut  string                                                                           // the fixture is left out with it
		demoOnly bool
	}{
		{name: "PinnedBoth", prepare: func(_ *testing.T, _ string, sums map[string]string) (map[string]string, bool) {
			return sums, true
		}},
		{name: "PinnedOneNotRequired", prepare: func(_ *testing.T, _ string, sums map[string]string) (map[string]string, bool) {
			return map[string]string{"demo": "SHA256:" + strings.ToUpper(sums["demo"])}, false
		}},
		{name: "WrongPin", leftOut: "not the 0000", prepare: func(_ *testing.T, _ string, sums map[string]string) (map[string]string, bool) {
			return map[string]string{"demo": sums["demo"], "fixture": zeros}, false
		}},
		{name: "RequiredButUnpinned", leftOut: "plugins.require_sha256 is set and plugins.sha256 has no pin for fixture",
			prepare: func(_ *testing.T, _ string, sums map[string]string) (map[string]string, bool) {
				return map[string]string{"demo": sums["demo"]}, true
			}},
		{name: "WorldWritable", leftOut: "is writable by every user (mode 0757)", prepare: func(t *testing.T, dir string, _ map[string]string) (map[string]string, bool) {
			if err := os.Chmod(filepath.Join(dir, "fixture"), 0o757); err != nil {
				t.Fatal(err)
			}
			return nil, false
		}},
		{name: "BadHex", loadErr: "plugins.sha256.demo is \"xyz\": it must be the file's SHA-256 as 64 hex digits",
			prepare: func(*testing.T, string, map[string]string) (map[string]string, bool) {
				return map[string]string{"demo": "xyz"}, false
			}},
		{name: "PinOfNoFile", loadErr: "plugins.sha256.nothing names no executable file",
			prepare: func(_ *testing.T, _ string, sums map[string]string) (map[string]string, bool) {
				return map[string]string{"nothing": sums["demo"]}, false
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, sums := copyPlugins(t, "demo", "fixture")
			pins, require := tt.prepare(t, dir, sums)
			log := &procs.Buffer{}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			h, err := pluginhost.Load(ctx, pluginhost.Options{Dir: dir, Callbacks: newRecorder(),
				Checksums: pins, RequireChecksums: require,
				Logger: hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Info})})
			if tt.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.loadErr) {
					t.Fatalf("Load = %v; want an error with %q", err, tt.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			defer h.Close()
			if _, ok := h.JobType("DEMO"); !ok {
				t.Fatal("DEMO is not served")
			}
			_, fixtureServed := h.JobType("NOOP")
			failed := h.Failed()
			if tt.leftOut == "" {
				if !fixtureServed || len(failed) != 0 {
					t.Fatalf("fixture served %v, failed %+v; want it served", fixtureServed, failed)
				}
				return
			}
			fixture := filepath.Join(dir, "fixture")
			if fixtureServed || len(failed) != 1 || failed[0].Path != fixture || !strings.Contains(failed[0].Err, tt.leftOut) {
				t.Fatalf("fixture served %v, failed %+v; want it left out with %q", fixtureServed, failed, tt.leftOut)
			}
			if !strings.Contains(log.String(), "plugin left out") || !strings.Contains(log.String(), fixture) {
				t.Errorf("the log does not name the refused file:\n%s", log.String())
			}
		})
	}
}

// A pinned plugin that is replaced while the host runs is refused at its
// next start: a crashed plugin is restarted only as the file that was
// pinned.
func TestAPinnedPluginReplacedWhileRunningIsNotRestarted(t *testing.T) {
	t.Parallel()
	dir, sums := copyPlugins(t, "demo", "fixture")
	log := &procs.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := pluginhost.Load(ctx, pluginhost.Options{Dir: dir, Callbacks: newRecorder(), Checksums: sums,
		RestartBackoffMax: 100 * time.Millisecond,
		Logger:            hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Debug})})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var pid int
	for _, p := range h.Health() {
		if p.Name == "demo" {
			pid = p.PID
		}
	}
	// Swap demo for the fixture's binary (a new file: the running one is
	// not written to), then crash demo.
	fixture, err := os.ReadFile(filepath.Join(dir, "fixture"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".demo.new")
	if err := os.WriteFile(tmp, fixture, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "demo")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "not the "+sums["demo"]) {
		if time.Now().After(deadline) {
			t.Fatalf("the replaced plugin's restart was not refused by its pin:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range h.Health() {
		if p.Name == "demo" && p.Status == pluginhost.PluginUp {
			t.Errorf("the replaced demo runs again: %+v", p)
		}
	}
}

// A pinned script plugin (Python) starts too: its interpreter opens the
// checked file through the descriptor the host hands it.
func TestAPinnedScriptPluginStarts(t *testing.T) {
	t.Parallel()
	if err := exec.Command("/usr/bin/python3", "-c", "import grpc, google.protobuf, cryptography").Run(); err != nil {
		t.Skipf("/usr/bin/python3 cannot run the Python sdk (make deps installs Debian's python3-grpcio, python3-protobuf, python3-cryptography): %v", err)
	}
	dir := plugintest.Dir(t, "pydemo")
	b, err := os.ReadFile(plugintest.Binary(t, "pydemo"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := &procs.Buffer{}
	h, err := pluginhost.Load(ctx, pluginhost.Options{Dir: dir, Callbacks: newRecorder(), RequireChecksums: true,
		Checksums: map[string]string{"pydemo": fmt.Sprintf("%x", sha256.Sum256(b))},
		Logger:    hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Debug})})
	if err != nil {
		t.Fatalf("Load of a pinned pydemo: %v\n%s", err, log.String())
	}
	defer h.Close()
	if _, ok := h.JobType("PYDEMO"); !ok {
		t.Fatal("PYDEMO is not served")
	}
}
