package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

func TestParse(t *testing.T) {
	t.Parallel()
	base := env{"BERTH_SCANNER_API_KEY": "k", "BERTH_SCANNER_ADVISORIES": "testdata/advisories"}
	with := func(kv ...string) env {
		e := env{}
		for k, v := range base {
			e[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}
	tests := []struct {
		name    string
		args    []string
		env     env
		check   func(options) bool
		wantErr string
	}{
		{"FromEnv", nil, with("BERTH_SCANNER_ADDR", "127.0.0.1:9999", "BERTH_SCANNER_MAX_SCANS", "7", "BERTH_SCANNER_REFRESH_AFTER", "3s"),
			func(o options) bool {
				return o.addr == "127.0.0.1:9999" && o.apiKey == "k" && o.maxScans == 7 && o.refreshAfter == 3*time.Second
			}, ""},
		{"FlagWins", []string{"-api-key", "flag", "-max-scans", "2"}, with("BERTH_SCANNER_MAX_SCANS", "7"),
			func(o options) bool { return o.apiKey == "flag" && o.maxScans == 2 }, ""},
		{"Defaults", nil, base, func(o options) bool {
			return o.addr == "127.0.0.1:8090" && o.maxScans == 4 && o.queue == 64 && o.retention == time.Hour && !o.skipVerify
		}, ""},
		{"BadEnv", nil, with("BERTH_SCANNER_MAX_SCANS", "many"), nil, "env BERTH_SCANNER_MAX_SCANS"},
		{"BadBoolEnv", nil, with("BERTH_SCANNER_REGISTRY_SKIP_VERIFY", "maybe"), nil, "env BERTH_SCANNER_REGISTRY_SKIP_VERIFY"},
		{"NoKey", nil, env{"BERTH_SCANNER_ADVISORIES": "x"}, nil, "-api-key (or BERTH_SCANNER_API_KEY) is required"},
		{"NoAdvisories", []string{"-api-key", "k"}, env{}, nil, "-advisories (or BERTH_SCANNER_ADVISORIES) is required"},
		{"ZeroScans", []string{"-max-scans", "0"}, base, nil, "-max-scans must be at least 1"},
		{"ShortRefresh", []string{"-refresh-after", "10ms"}, base, nil, "-refresh-after must be at least 1s"},
		{"Arguments", []string{"extra"}, base, nil, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(tc.args, tc.env.lookup, &bytes.Buffer{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(o) {
				t.Fatalf("parse = %+v, %v", o, err)
			}
		})
	}
}

// -h documents every flag's env variable.
func TestHelpNamesTheEnv(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if _, err := parse([]string{"-h"}, env{}.lookup, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, f := range []string{"addr", "api-key", "advisories", "max-scans", "queue", "refresh-after", "retention", "pull-timeout", "registry-skip-verify", "log-level"} {
		if !strings.Contains(out.String(), "-"+f) || !strings.Contains(out.String(), "(env "+envName(f)+")") {
			t.Errorf("-h does not document -%s and %s:\n%s", f, envName(f), out.String())
		}
	}
}

// syncBuffer is a buffer the adapter logs into while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run serves the API on the address it is given and stops when its
// context ends.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-advisories", "testdata/advisories"}, env{"BERTH_SCANNER_API_KEY": "k"}.lookup, logs)
	}()
	addrRE := regexp.MustCompile(`msg="serving the Pluggable Scanner API" addr=(\S+)`)
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended: %v\n%s", err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the adapter did not serve within 10 s:\n%s", logs.String())
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/metadata", nil)
	req.Header.Set("X-ScannerAdapter-API-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %d", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "advisories=5") {
		t.Fatalf("log:\n%s", logs.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not end within 10 s of its context")
	}
}

func TestRunRefusesBadAdvisories(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"-api-key", "k", "-advisories", t.TempDir() + "/missing"}, env{}.lookup, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "advisories") {
		t.Fatalf("run = %v", err)
	}
	err = run(context.Background(), []string{"-api-key", "k", "-advisories", "testdata/advisories", "-log-level", "loud"}, env{}.lookup, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "-log-level") {
		t.Fatalf("run = %v", err)
	}
}
