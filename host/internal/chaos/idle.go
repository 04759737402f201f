package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// idleHelperArg makes the suite's own binary an idle-connection helper:
// one process holds at most perHelper connections, because the file limit
// of one process (RLIMIT_NOFILE) is often about 20,000 and cannot be
// raised past its hard limit.
const (
	idleHelperArg = "-idle-helper"
	perHelper     = 5000
)

// idleHelper opens n TCP connections to addr, sends nothing on them,
// prints "opened <k> failed <f> [first error]" and holds them until it is
// killed (at most 5 minutes).
func idleHelper(addr string, n int) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	var (
		mu       sync.Mutex
		conns    []net.Conn
		failed   atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, 256)
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := d.Dial("tcp", addr)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	e, _ := firstErr.Load().(string)
	fmt.Printf("opened %d failed %d %s\n", len(conns), failed.Load(), e)
	time.Sleep(5 * time.Minute)
}

// parseOpened reads a helper's line.
func parseOpened(out string) (opened, failed int, first string, ok bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "opened" && f[2] == "failed" {
			o, err1 := strconv.Atoi(f[1])
			fl, err2 := strconv.Atoi(f[3])
			if err1 == nil && err2 == nil {
				return o, fl, strings.Join(f[4:], " "), true
			}
		}
	}
	return 0, 0, "", false
}

// idleConns holds n idle connections to host A's API while it probes
// A's API with fresh connections, then drops them.
func idleConns(n int) func(context.Context, *scene) (time.Time, error) {
	return func(ctx context.Context, sc *scene) (time.Time, error) {
		a, b := sc.hosts[0], sc.hosts[1]
		if err := sc.warm(ctx, a, 2); err != nil {
			return time.Time{}, err
		}
		sc.setTargets(b)
		self, err := os.Executable()
		if err != nil {
			return time.Time{}, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(a.port)
		rss0, fds0 := rssAndFDs(a.p.pid())
		at := time.Now()
		sc.at = at
		var helpers []*proc
		for i := 0; n-i*perHelper > 0; i++ {
			k := min(perHelper, n-i*perHelper)
			p, err := sc.s.procs.start(fmt.Sprintf("idle-%d", i), filepath.Join(sc.dir, fmt.Sprintf("idle-%d.log", i)), nil,
				self, idleHelperArg, addr, strconv.Itoa(k))
			if err != nil {
				return time.Time{}, err
			}
			helpers = append(helpers, p)
		}
		opened, failed, first := 0, 0, ""
		err = waitFor(ctx, 90*time.Second, 100*time.Millisecond, func() error {
			opened, failed, first = 0, 0, ""
			for _, p := range helpers {
				raw, _ := os.ReadFile(p.log)
				o, f, e, ok := parseOpened(string(raw))
				if !ok {
					if !p.alive() {
						return fmt.Errorf("helper %s ended: %v", p.name, p.exit)
					}
					return errors.New("helpers still dialing")
				}
				opened, failed = opened+o, failed+f
				if first == "" {
					first = e
				}
			}
			return nil
		})
		if err != nil {
			return time.Time{}, err
		}
		dial := time.Since(at)
		rss, fds := rssAndFDs(a.p.pid())
		sc.note("%d of %d connections opened in %s (%d failed%s); A: RSS %.0f→%.0f MiB, open files %d→%d",
			opened, n, dial.Round(100*time.Millisecond), failed, map[bool]string{true: ": " + first, false: ""}[first != ""],
			rss0, rss, fds0, fds)
		// Fresh clients while the connections are held: does A serve?
		served, asked := 0, 0
		var worst time.Duration
		for end := time.Now().Add(8 * time.Second); time.Now().Before(end) && ctx.Err() == nil; {
			asked++
			t0 := time.Now()
			if apiAnswers(ctx, addr, 2*time.Second) {
				served++
			}
			worst = max(worst, time.Since(t0))
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		sc.note("while they were held A answered %d of %d fresh GET /api/v1/stats (slowest %s)", served, asked, worst.Round(time.Millisecond))
		if served*10 < asked*9 {
			sc.defect("A answered %d of %d API calls while %d idle connections were held", served, asked, opened)
		}
		if !a.p.alive() {
			sc.defect("A died under the idle connections: %v", a.p.exit)
		}
		for _, p := range helpers {
			p.kill()
		}
		back := time.Now()
		if err := a.waitServing(ctx, 60*time.Second); err != nil {
			sc.defect("A did not serve again after the connections closed: %v", err)
		} else {
			sc.note("A served again %s after they closed", time.Since(back).Round(time.Millisecond))
		}
		sc.setTargets(a, b)
		return back, nil
	}
}

// apiAnswers tells whether GET /api/v1/stats on a fresh connection
// answers 200 within d.
func apiAnswers(ctx context.Context, addr string, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/stats", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Harbor-Secret "+secret)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
