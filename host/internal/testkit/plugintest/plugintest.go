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

// scripts maps the plugins that need no build (a Python plugin) to their
// file, relative to the module root. The file itself is handed out (Dir
// links to it), not a copy: a script finds its sdk through its own real
// path (../../sdk/python from plugins/pydemo/pydemo).
var scripts = map[string]string{
	"pydemo": "plugins/pydemo/pydemo",
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
	script, isScript := scripts[name]
	if !ok && !isScript {
		t.Fatalf("plugintest: unknown plugin %q", name)
	}
	v, _ := builds.LoadOrStore(name, &build{})
	b := v.(*build)
	b.once.Do(func() {
		if isScript {
			b.path, b.err = scriptPlugin(name, script)
			return
		}
		b.path, b.err = buildPlugin(name, src)
	})
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

// commands caches one build per command package for the life of the test
// binary.
var commands sync.Map // package -> *build

// Command returns the path of the command built from pkg, a package
// directory relative to the module root ("host", "host/cmd/berthctl",
// "plugins/scan/adapter"), built once per test binary.
func Command(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := commands.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "berth-command-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.path, "./"+pkg)
		cmd.Dir = ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatalf("plugintest: %v", b.err)
	}
	return b.path
}

// ModuleRoot is the directory of the berth module.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// prebuilt is the plugin of that name in BERTH_TEST_PLUGINS, if any.
func prebuilt(name string) (string, bool) {
	if pre := os.Getenv("BERTH_TEST_PLUGINS"); pre != "" {
		p := filepath.Join(pre, name)
		if abs, err := filepath.Abs(p); err == nil {
			if info, err := os.Stat(abs); err == nil && info.Mode().IsRegular() {
				return abs, true
			}
		}
	}
	return "", false
}

// scriptPlugin returns the script plugin's file (or its copy in
// BERTH_TEST_PLUGINS), once it is sure the host would run it.
func scriptPlugin(name, file string) (string, error) {
	if p, ok := prebuilt(name); ok {
		return p, nil
	}
	p := filepath.Join(ModuleRoot(), file)
	info, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("script plugin %s: %w", name, err)
	}
	if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 || info.Mode().Perm()&0o002 != 0 {
		return "", fmt.Errorf("script plugin %s: %s has mode %v; the host runs only an executable file that not everyone may change (chmod 755 %s)", name, p, info.Mode(), p)
	}
	return p, nil
}

func buildPlugin(name, src string) (string, error) {
	if p, ok := prebuilt(name); ok {
		return p, nil
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
