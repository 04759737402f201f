package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/spawn"
)

// startRedis starts a redis-server on a free loopback port, without
// persistence, and returns its address.
func startRedis(dir string) (string, int, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--maxclients", "4096",
		"--slowlog-log-slower-than", strconv.Itoa(slowCommand), "--slowlog-max-len", "256")
	// Started through spawn, not cmd.Start: a child forked here dies
	// with whichever thread forked it, and a stopping host's plugin
	// spawner ends the thread it ran on, which once killed this Redis
	// between two parts.
	p, err := spawn.Start(cmd)
	if err != nil {
		return "", 0, nil, fmt.Errorf("start redis-server (run `make deps` to install it): %w", err)
	}
	var stopping sync.Once
	quit := make(chan struct{})
	stop := func() { stopping.Do(func() { close(quit) }); p.Kill() }
	go func() {
		select {
		case <-p.Done():
			select {
			case <-quit: // stop killed it
				return
			default:
			}
			fmt.Fprintf(os.Stderr, "bench: redis-server (pid %d) ended before the bench did: %v; the parts after this one cannot run\n", p.Pid(), p.Err())
		case <-quit:
		}
	}()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := redis.Dial("tcp", addr); err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return addr, p.Pid(), stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", 0, nil, fmt.Errorf("redis-server on %s did not answer", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// slowCommand is the run time (µs) from which Redis keeps a command in
// its SLOWLOG: a command that long holds every other client back, and the
// pickup and stop figures count in milliseconds.
const slowCommand = 2000

// slowCommands reads and resets the SLOWLOG: how many commands ran for
// slowCommand or more since the last call, and the slowest, described as
// "12.3 ms EVALSHA 1f0e…" (the command's first two words).
func slowCommands(pool *redis.Pool) (int, string, error) {
	c := pool.Get()
	defer c.Close()
	entries, err := redis.Values(c.Do("SLOWLOG", "GET", "-1"))
	if err != nil {
		return 0, "", fmt.Errorf("SLOWLOG GET: %w", err)
	}
	if _, err := c.Do("SLOWLOG", "RESET"); err != nil {
		return 0, "", fmt.Errorf("SLOWLOG RESET: %w", err)
	}
	var worst int64
	var what string
	for _, e := range entries {
		// id, time, duration (µs), the command's words, ...
		f, err := redis.Values(e, nil)
		if err != nil || len(f) < 4 {
			continue
		}
		us, _ := redis.Int64(f[2], nil)
		words, _ := redis.Strings(f[3], nil)
		if us > worst && len(words) > 0 {
			worst, what = us, strings.ToUpper(words[0])
			if len(words) > 1 {
				// A script's SHA or a key names what ran.
				what += " " + words[1][:min(len(words[1]), 40)]
			}
		}
	}
	if len(entries) == 0 {
		return 0, "", nil
	}
	return len(entries), fmt.Sprintf("%.1f ms %s", float64(worst)/1000, what), nil
}

// newPool returns a pool on addr. With counter set, every command sent
// through the pool is counted, so that the bench can subtract its own
// commands from INFO commandstats.
func newPool(addr string, counter *cmdCounter) *redis.Pool {
	return &redis.Pool{MaxIdle: 64, IdleTimeout: time.Minute, Dial: func() (redis.Conn, error) {
		c, err := redis.Dial("tcp", addr)
		if err != nil || counter == nil {
			return c, err
		}
		return &countingConn{Conn: c, n: counter}, nil
	}}
}

// cmdCounter counts commands by lower-case name.
type cmdCounter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *cmdCounter) add(name string) {
	if name == "" {
		return // Do("") only flushes and receives
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[strings.ToLower(name)]++
	c.mu.Unlock()
}

// snapshot returns the counts so far.
func (c *cmdCounter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

type countingConn struct {
	redis.Conn
	n *cmdCounter
}

func (c *countingConn) Do(name string, args ...any) (any, error) {
	c.n.add(name)
	return c.Conn.Do(name, args...)
}

func (c *countingConn) Send(name string, args ...any) error {
	c.n.add(name)
	return c.Conn.Send(name, args...)
}

// commandStats reads INFO commandstats: calls per command (Redis 7 counts
// the commands a Lua script runs as well as the EVALSHA itself).
func commandStats(pool *redis.Pool) (map[string]int64, error) {
	c := pool.Get()
	defer c.Close()
	s, err := redis.String(c.Do("INFO", "commandstats"))
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("INFO commandstats: %q: %w", line, err)
				}
				out[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	return out, nil
}

// cmdWindow measures the commands Redis ran between open and close,
// without the bench's own (counted by a cmdCounter) and without INFO.
type cmdWindow struct {
	pool    *redis.Pool
	counter *cmdCounter
	before  map[string]int64
	own     map[string]int64
	start   time.Time
}

func openWindow(pool *redis.Pool, counter *cmdCounter) (*cmdWindow, error) {
	before, err := commandStats(pool)
	if err != nil {
		return nil, err
	}
	return &cmdWindow{pool: pool, counter: counter, before: before, own: counter.snapshot(), start: time.Now()}, nil
}

// cmdDiff is what a window saw.
type cmdDiff struct {
	Total   int64            `json:"total"`
	ByName  map[string]int64 `json:"by_command"`
	Seconds float64          `json:"seconds"`
}

func (w *cmdWindow) close() (cmdDiff, error) {
	own := w.counter.snapshot()
	elapsed := time.Since(w.start)
	after, err := commandStats(w.pool)
	if err != nil {
		return cmdDiff{}, err
	}
	d := cmdDiff{ByName: map[string]int64{}, Seconds: elapsed.Seconds()}
	for name, n := range after {
		if name == "info" {
			continue
		}
		v := n - w.before[name] - (own[name] - w.own[name])
		if v > 0 {
			d.ByName[name] = v
			d.Total += v
		}
	}
	return d, nil
}

// top returns the n commands with the most calls, as "name value" pairs
// divided by div.
func (d cmdDiff) top(n int, div float64) []nameValue {
	var out []nameValue
	for k, v := range d.ByName {
		out = append(out, nameValue{Name: k, Value: float64(v) / div})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Value != out[j].Value {
			return out[i].Value > out[j].Value
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

type nameValue struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// redisVersion reads redis_version from INFO server.
func redisVersion(pool *redis.Pool) string {
	c := pool.Get()
	defer c.Close()
	s, err := redis.String(c.Do("INFO", "server"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return ""
}
