package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// hostAddr is the host:port of a test host.
func hostAddr(h *hosttest.Host) string { return strings.TrimPrefix(h.URL, "http://") }

// closedWithin reports whether the server closed conn within d (a read
// ends with EOF or a reset, not with the read deadline).
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// A client that connects and sends nothing, or sends its body a byte at
// a time, is cut off by the timeouts; without the secret it costs the
// host nothing beyond them.
func TestSlowAndIdleClientsAreCutOff(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, func(cfg *config.Config) {
		cfg.API.ReadTimeout = config.Duration(time.Second)
		cfg.API.IdleTimeout = config.Duration(time.Second)
	})
	idle, err := net.Dial("tcp", hostAddr(h))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	slow, err := net.Dial("tcp", hostAddr(h))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Harbor-Secret "+hosttest.Secret+"\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte a second, for as long as the server reads
		for i := 0; i < 30; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			if _, err := io.WriteString(slow, " "); err != nil {
				return
			}
		}
	}()
	if !closedWithin(t, idle, 15*time.Second) {
		t.Error("a connection that sent nothing was not closed")
	}
	if !closedWithin(t, slow, 15*time.Second) {
		t.Error("a body sent a byte a second was still read after the read timeout")
	}
	// A client that finished a request and keeps the connection idle is
	// closed too.
	kept, err := net.Dial("tcp", hostAddr(h))
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if _, err := io.WriteString(kept, "GET /api/v1/stats HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(kept), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /stats on a kept connection: %v, %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if !closedWithin(t, kept, 15*time.Second) {
		t.Error("an idle keep-alive connection was not closed")
	}
}

// Connections beyond max_connections never use up the host's file
// descriptors. Idle ones (never a request, or idle between keep-alive
// requests) make room: a flood of them cannot keep a caller out. Only
// when every held connection is busy with a request does a new one wait.
func TestConnectionsBeyondTheCap(t *testing.T) {
	t.Parallel()
	const limit = 16
	h := hosttest.NewCluster(t).Start(t, func(cfg *config.Config) {
		cfg.API.MaxConnections = limit
		cfg.API.ReadTimeout = config.Duration(time.Minute) // the held connections stay
	})

	t.Run("IdleOnesMakeRoom", func(t *testing.T) {
		var held []net.Conn
		for range 4 * limit {
			c, err := net.Dial("tcp", hostAddr(h))
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for i := range 3 {
			resp, err := client.Get(h.URL + "/api/v1/stats")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d with %d idle connections open: %v, %v", i, len(held), resp, err)
			}
			resp.Body.Close()
		}
		// The oldest idle connections were closed to make room.
		_ = held[0].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := held[0].Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("the oldest idle connection is still open (%v)", err)
		}
	})

	t.Run("BusyOnesMakeNewOnesWait", func(t *testing.T) {
		var held []net.Conn
		for range limit {
			c, err := net.Dial("tcp", hostAddr(h))
			if err != nil {
				t.Fatal(err)
			}
			// A request whose body never ends: the connection is busy. The
			// server's "100 Continue" says its handler is reading the body.
			fmt.Fprintf(c, "POST /api/v1/jobs HTTP/1.1\r\nHost: berth\r\nAuthorization: %s\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n", hosttest.Auth)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.Contains(line, "100 Continue") {
				t.Fatalf("a busy connection's request was not taken in: %q, %v", line, err)
			}
			fmt.Fprint(c, "{")
			held = append(held, c)
		}
		// A client of its own, without kept-alive connections: a request
		// must get a connection of its own.
		client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := client.Get(h.URL + "/api/v1/stats")
			if err != nil {
				break
			}
			resp.Body.Close()
			if time.Now().After(deadline) {
				t.Fatalf("with %d busy connections held, a request was still served", limit)
			}
		}
		for _, c := range held {
			c.Close()
		}
		client.Timeout = 10 * time.Second
		resp, err := client.Get(h.URL + "/api/v1/stats")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("after the busy connections closed: %v, %v", resp, err)
		}
		resp.Body.Close()
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A body over max_body_bytes (1 MiB by default) is a 413 with Harbor's
// error body, and nothing is stored.
func TestALargeBodyIsRefused(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	big := bytes.Repeat([]byte("a"), 2<<20)
	body := append([]byte(`{"job":{"name":"DEMO","parameters":{"image":"demo","pad":"`), big...)
	body = append(body, []byte(`"},"metadata":{"kind":"Generic"}}}`)...)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, h.URL+"/api/v1/jobs", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", hosttest.Auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(msg), `"code":10000`) || !strings.Contains(string(msg), "1048576 bytes") {
		t.Fatalf("a 2 MiB submission: %d %s; want a 413 saying the limit", resp.StatusCode, msg)
	}
}
