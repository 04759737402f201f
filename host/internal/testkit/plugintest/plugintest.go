package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// sources maps plugin names to their package directory, relative to the
// module root.
var sources = map[string]string{
	"demo":        "plugins/demo",
	"scan":        "plugins/scan",
	"gc":          "plugins/gc",
	"replication": "plugins/replication",
	"scheduler":   "plugins/scheduler",
	"webhook":     "plugins/webhook",
	"slack":       "plugins/slack",
	"fixture":     "host/internal/testkit/plugintest/fixture",
	"features":    "host/internal/testkit/plugintest/features",
	"dupdemo":     "host/internal/testkit/plugintest/dupdemo",
	"oldproto":    "host/internal/testkit/plugintest/oldproto",
}

// builds caches one build per plugin name for the life of the test binary.
var builds sync.Map // name -> *build

type build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the built plugin called name.
func Binary(t testing.TB, name string) string {
	t.Helper()
	src, ok := sources[name]
	if !ok {
		t.Fatalf("plugintest: unknown plugin %q", name)
	}
	v, _ := builds.LoadOrStore(name, &build{})
	b := v.(*build)
	b.once.Do(func() { b.path, b.err = buildPlugin(name, src) })
	if b.err != nil {
		t.Fatalf("plugintest: %v", b.err)
	}
	return b.path
}

// Dir returns a new plugins directory (removed after the test) holding the
// named plugins.
func Dir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range names {
		if err := os.Symlink(Binary(t, name), filepath.Join(dir, name)); err != nil {
			t.Fatalf("plugintest: %v", err)
		}
	}
	return dir
}

// ModuleRoot is the directory of the berth module.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

func buildPlugin(name, src string) (string, error) {
	if pre := os.Getenv("BERTH_TEST_PLUGINS"); pre != "" {
		p := filepath.Join(pre, name)
		if abs, err := filepath.Abs(p); err == nil {
			if info, err := os.Stat(abs); err == nil && info.Mode().IsRegular() {
				return abs, nil
			}
		}
	}
	dir, err := os.MkdirTemp("", "berth-plugintest-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, "./"+src)
	cmd.Dir = ModuleRoot()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build plugin %s: %v\n%s", name, err, msg)
	}
	return out, nil
}
