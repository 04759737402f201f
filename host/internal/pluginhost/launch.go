package pluginhost

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// spawner starts processes from one goroutine locked to its OS thread for
// the life of the host. Linux delivers a parent-death signal when the
// *thread* that forked the child exits, so forking from threads that the Go
// runtime may retire would kill plugins at random; a thread that lives as
// long as the host process ties the signal to the host's death.
type spawner struct {
	reqs chan spawnReq
	stop chan struct{}
	once sync.Once
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), stop: make(chan struct{})}
	go func() {
		// Never unlocked: when this goroutine returns, the runtime ends the
		// thread, which is fine because no plugin is started after that.
		runtime.LockOSThread()
		for {
			select {
			case r := <-s.reqs:
				r.done <- r.cmd.Start()
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *spawner) start(ctx context.Context, cmd *exec.Cmd) error {
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-s.stop:
		return errors.New("pluginhost: the host is shutting down")
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.done
}

func (s *spawner) close() { s.once.Do(func() { close(s.stop) }) }

// procRunner is go-plugin's runner for one plugin process. It differs from
// go-plugin's own in two ways: the process gets a parent-death signal and a
// process group of its own, and its stderr is read here and logged safely,
// while go-plugin gets an empty stderr stream to parse.
type procRunner struct {
	cmd     *exec.Cmd
	spawn   *spawner
	log     hclog.Logger
	stdoutR *os.File
	stdoutW *os.File
	stderrR *os.File
	stderrW *os.File
	drained chan struct{}
	pid     int
	pinned  *os.File // the checked plugin file, open until the process started
}

// newProcRunner prepares the process of the plugin at path. When pinned
// is not nil, it is that file, open and checked: the process runs it
// through its descriptor, so that a file swapped since the check is not
// what runs; the runner closes it once the process has started.
// pinnedFD is where a pinned plugin's process finds its own file.
const pinnedFD = "/dev/fd/3"

func newProcRunner(path string, pinned *os.File, env []string, spawn *spawner, log hclog.Logger) (*procRunner, error) {
	cmd := exec.Command(path)
	if pinned != nil {
		// The child gets the checked file as descriptor 3 and executes
		// it from there. Not close-on-exec: an interpreter (a Python
		// plugin's #! line) opens the script by that name after exec.
		cmd = exec.Command(pinnedFD)
		cmd.Args[0] = path
		cmd.ExtraFiles = []*os.File{pinned}
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Killed with the host, even by SIGKILL.
		Pdeathsig: syscall.SIGKILL,
		// Out of the terminal's process group: a Ctrl-C meant for the host
		// must not reach the plugins before the host stops their jobs.
		Setpgid: true,
	}
	r := &procRunner{cmd: cmd, spawn: spawn, log: log, drained: make(chan struct{}), pinned: pinned}
	var err error
	if r.stdoutR, r.stdoutW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("pluginhost: stdout pipe for %s: %w", path, err)
	}
	if r.stderrR, r.stderrW, err = os.Pipe(); err != nil {
		r.stdoutR.Close()
		r.stdoutW.Close()
		return nil, fmt.Errorf("pluginhost: stderr pipe for %s: %w", path, err)
	}
	cmd.Stdout = r.stdoutW
	cmd.Stderr = r.stderrW
	return r, nil
}

func (r *procRunner) Start(ctx context.Context) error {
	err := r.spawn.start(ctx, r.cmd)
	if r.pinned != nil {
		r.pinned.Close()
	}
	// The child has its own copies of the write ends now.
	r.stdoutW.Close()
	r.stderrW.Close()
	if err != nil {
		r.stdoutR.Close()
		r.stderrR.Close()
		close(r.drained)
		return err
	}
	r.pid = r.cmd.Process.Pid
	go func() {
		defer close(r.drained)
		defer r.stderrR.Close()
		logStderr(r.stderrR, r.log)
	}()
	return nil
}

func (r *procRunner) Wait(context.Context) error {
	err := r.cmd.Wait()
	// Lines written just before the exit are still in the pipe; a grandchild
	// holding the pipe open must not block the wait forever.
	select {
	case <-r.drained:
	case <-time.After(2 * time.Second):
	}
	return err
}

func (r *procRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	// The whole process group: a plugin's own children go with it.
	if err := syscall.Kill(-r.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pluginhost: kill plugin %s (pid %d): %w", r.cmd.Path, r.pid, err)
	}
	return nil
}

func (r *procRunner) Diagnose(context.Context) string {
	return "check that the plugin is an executable built for this machine that calls sdk.Serve, and read its stderr above"
}

func (r *procRunner) Stdout() io.ReadCloser { return r.stdoutR }

// Stderr is what go-plugin parses as hclog JSON: nothing. The real stderr
// is read by logStderr.
func (r *procRunner) Stderr() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }

func (r *procRunner) Name() string { return r.cmd.Path }
func (r *procRunner) ID() string   { return strconv.Itoa(r.pid) }

func (r *procRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *procRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

var _ runner.Runner = (*procRunner)(nil)

// maxStderrLine bounds one logged line of plugin stderr; the rest of a
// longer line is dropped.
const maxStderrLine = 64 << 10

// logStderr logs each line of a plugin's stderr. A line that is an hclog
// JSON entry is logged at its level with its fields; anything else (panics,
// plain prints, malformed JSON of any shape) is logged as text. Nothing a
// plugin writes here can make the host fail.
func logStderr(r io.Reader, log hclog.Logger) {
	br := bufio.NewReaderSize(r, maxStderrLine)
	inPanic := false
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			inPanic = logLine(log, line, inPanic)
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line without its newline, keeping at most
// maxStderrLine bytes of it.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		frag, isPrefix, err := br.ReadLine()
		if len(out) < maxStderrLine {
			room := maxStderrLine - len(out)
			if len(frag) > room {
				frag = frag[:room]
			}
			out = append(out, frag...)
		}
		if err != nil || !isPrefix {
			return out, err
		}
	}
}

func logLine(log hclog.Logger, line []byte, inPanic bool) bool {
	if entry, ok := parseHCLogJSON(line); ok {
		args := make([]any, 0, 2*len(entry.fields))
		for _, k := range entry.keys {
			args = append(args, k, entry.fields[k])
		}
		log.Log(entry.level, entry.message, args...)
		return false
	}
	text := string(line)
	switch {
	case strings.HasPrefix(text, "panic: "), strings.HasPrefix(text, "fatal error: "):
		inPanic = true
		log.Error(text)
	case inPanic:
		log.Error(text)
	default:
		log.Info(text)
	}
	return inPanic
}

type hclogEntry struct {
	level   hclog.Level
	message string
	keys    []string
	fields  map[string]any
}

// parseHCLogJSON accepts a line only when it is a JSON object whose
// "@message" and "@level" (when present) are strings.
func parseHCLogJSON(line []byte) (hclogEntry, bool) {
	var raw map[string]any
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &raw) != nil {
		return hclogEntry{}, false
	}
	msg, ok := raw["@message"].(string)
	if !ok {
		return hclogEntry{}, false
	}
	e := hclogEntry{level: hclog.Info, message: msg, fields: map[string]any{}}
	if v, present := raw["@level"]; present {
		s, ok := v.(string)
		if !ok {
			return hclogEntry{}, false
		}
		if l := hclog.LevelFromString(s); l != hclog.NoLevel {
			e.level = l
		}
	}
	for k, v := range raw {
		if strings.HasPrefix(k, "@") {
			continue
		}
		e.keys = append(e.keys, k)
		e.fields[k] = v
	}
	sort.Strings(e.keys)
	return e, true
}
