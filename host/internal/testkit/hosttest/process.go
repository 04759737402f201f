package hosttest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

// Process is a host of a cluster in a berth process of its own, so that a
// test can kill or freeze it.
type Process struct {
	Cmd *exec.Cmd
	URL string
	// Out is the process's output (its log).
	Out  *procs.Buffer
	done chan struct{}
}

// StartProcess runs the berth command (built from this tree) against the
// cluster's Redis, namespace and plugins, with job logs in a directory of
// the test's own and yml added to its configuration, and waits until it
// serves. Cleanup kills it (continued first, should the test have
// stopped it).
func (c *Cluster) StartProcess(t testing.TB, yml string) *Process {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfgPath := filepath.Join(t.TempDir(), "config.yml")
	yml = fmt.Sprintf("job_loggers:\n  - name: FILE\n    level: INFO\n    settings:\n      base_dir: %q\n", t.TempDir()) + yml
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(plugintest.Command(t, "host"), "-c", cfgPath)
	cmd.Env = append(os.Environ(), "CORE_SECRET="+Secret, "JOB_SERVICE_PORT="+strconv.Itoa(port),
		"JOB_SERVICE_POOL_REDIS_URL="+c.Redis.URL(), "JOB_SERVICE_POOL_REDIS_NAMESPACE="+c.Namespace,
		"BERTH_PLUGINS_DIR="+c.Plugins, "BERTH_SHUTDOWN_GRACE=1s")
	p := &Process{Cmd: cmd, URL: fmt.Sprintf("http://127.0.0.1:%d", port), Out: &procs.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("berth process output:\n%s", p.Out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/api/v1/stats")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("berth exited before serving: %v\n%s", cmd.ProcessState, p.Out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth did not serve within 30s:\n%s", p.Out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }
