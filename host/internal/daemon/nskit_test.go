package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// nsRedis looks at the Redis keys of one test cluster's namespace, the way
// an operator with redis-cli would.
type nsRedis struct {
	pool *redis.Pool
	ns   string
}

func openNS(t testing.TB, c *hosttest.Cluster) *nsRedis {
	t.Helper()
	return &nsRedis{pool: c.Redis.Pool(t), ns: c.Namespace}
}

// key spells a key of the namespace: "{<ns>}:" + suffix.
func (r *nsRedis) key(suffix string) string { return "{" + r.ns + "}:" + suffix }

func (r *nsRedis) do(t testing.TB, cmd string, args ...any) any {
	t.Helper()
	conn := r.pool.Get()
	defer conn.Close()
	v, err := conn.Do(cmd, args...)
	if err != nil {
		t.Fatalf("redis %s %v: %v", cmd, args, err)
	}
	return v
}

func (r *nsRedis) int(t testing.TB, cmd string, args ...any) int64 {
	t.Helper()
	n, err := redis.Int64(r.do(t, cmd, args...), nil)
	if err != nil {
		t.Fatalf("redis %s %v: %v", cmd, args, err)
	}
	return n
}

func (r *nsRedis) strings(t testing.TB, cmd string, args ...any) []string {
	t.Helper()
	s, err := redis.Strings(r.do(t, cmd, args...), nil)
	if err != nil {
		t.Fatalf("redis %s %v: %v", cmd, args, err)
	}
	return s
}

// entryID is the job ID of a gocraft/work queue or sorted set entry.
func entryID(raw string) string {
	var e struct {
		ID   string         `json:"id"`
		Args map[string]any `json:"args"`
	}
	_ = json.Unmarshal([]byte(raw), &e)
	return store.JobIDOf(e.ID, e.Args)
}

// listEntries counts the entries of job id in a gocraft/work queue (list).
func (r *nsRedis) listEntries(t testing.TB, suffix, id string) int {
	t.Helper()
	n := 0
	for _, e := range r.strings(t, "LRANGE", r.key(suffix), 0, -1) {
		if entryID(e) == id {
			n++
		}
	}
	return n
}

// zsetScores returns the scores of the entries of job id in a gocraft/work
// sorted set (scheduled or retry).
func (r *nsRedis) zsetScores(t testing.TB, suffix, id string) []int64 {
	t.Helper()
	raw := r.strings(t, "ZRANGE", r.key(suffix), 0, -1, "WITHSCORES")
	var scores []int64
	for i := 0; i+1 < len(raw); i += 2 {
		if entryID(raw[i]) == id {
			var s int64
			fmt.Sscan(raw[i+1], &s)
			scores = append(scores, s)
		}
	}
	return scores
}

// ttl is the TTL of a key in seconds (-1 none, -2 no key).
func (r *nsRedis) ttl(t testing.TB, suffix string) int64 {
	t.Helper()
	return r.int(t, "TTL", r.key(suffix))
}

// scanAll lists every key of the namespace.
func (r *nsRedis) scanAll(t testing.TB) []string {
	t.Helper()
	return r.scan(t, "*")
}

// scan lists the keys of the namespace that match pattern (after "{<ns>}:").
func (r *nsRedis) scan(t testing.TB, pattern string) []string {
	t.Helper()
	var keys []string
	cursor := "0"
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("SCAN does not end")
		}
		v, err := redis.Values(r.do(t, "SCAN", cursor, "MATCH", r.key(pattern), "COUNT", 1000), nil)
		if err != nil || len(v) != 2 {
			t.Fatalf("SCAN: %v %v", v, err)
		}
		cursor, _ = redis.String(v[0], nil)
		batch, _ := redis.Strings(v[1], nil)
		keys = append(keys, batch...)
		if cursor == "0" {
			return keys
		}
	}
}

// apiErr is an error answer of the API.
type apiErr struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

// errorOf decodes an error answer and checks its status.
func errorOf(t testing.TB, r *hosttest.Response, status int) apiErr {
	t.Helper()
	var e apiErr
	if r.Status != status {
		t.Fatalf("answer %d %s, want %d", r.Status, r.Body, status)
	}
	r.JSON(t, &e)
	return e
}

// listPage GETs a listing and decodes it.
func listPage(t testing.TB, h *hosttest.Host, path string) ([]*job.Stats, *hosttest.Response) {
	t.Helper()
	r := h.Do(t, http.MethodGet, path, hosttest.Auth, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
	}
	var env []job.Envelope
	r.JSON(t, &env)
	out := make([]*job.Stats, len(env))
	for i, e := range env {
		if e.Job == nil {
			t.Fatalf("GET %s: element %d has no job: %s", path, i, r.Body)
		}
		out[i] = e.Job
	}
	return out, r
}

// pollUntil polls cond until it holds or the timeout passes.
func pollUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
