package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/host/client"
)

// hookServer is the status hook receiver of one fault: a loopback HTTP
// server that answers 200 to every POST and records it in the book.
type hookServer struct {
	srv *http.Server
	url string
}

func startHooks(b *book) (*hookServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hookServer{url: "http://" + l.Addr().String() + "/hook"}
	h.srv = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			var ev client.StatusChange
			if err != nil || r.Method != http.MethodPost || json.Unmarshal(raw, &ev) != nil || ev.JobID == "" {
				http.Error(w, "not a status hook", http.StatusBadRequest)
				return
			}
			b.hook(ev.JobID, ev.Status, time.Now())
			w.WriteHeader(http.StatusOK)
		}),
	}
	go func() { _ = h.srv.Serve(l) }()
	return h, nil
}

func (h *hookServer) close() { _ = h.srv.Close() }

// probeServer receives the PROBE plugin's UDP reports for one fault.
type probeServer struct {
	conn *net.UDPConn
	done chan struct{}
}

func startProbes(b *book) (*probeServer, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(8 << 20)
	p := &probeServer{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 512)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			r, ok := parseReport(string(buf[:n]))
			if !ok {
				continue
			}
			b.probe(r.kind, r.job, r.run, r.pid, r.at)
		}
	}()
	return p, nil
}

func (p *probeServer) addr() string { return p.conn.LocalAddr().String() }

func (p *probeServer) close() {
	_ = p.conn.Close()
	<-p.done
}

// report is one datagram of the PROBE plugin.
type report struct {
	kind, job, run string
	pid            int
	at             time.Time
}

// parseReport reads "kind job run pid unix_ns".
func parseReport(s string) (report, bool) {
	f := strings.Fields(s)
	if len(f) != 5 || (f[0] != "start" && f[0] != "beat" && f[0] != "end") || f[1] == "" || f[2] == "" {
		return report{}, false
	}
	pid, err1 := strconv.Atoi(f[3])
	ns, err2 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 || ns <= 0 {
		return report{}, false
	}
	return report{kind: f[0], job: f[1], run: f[2], pid: pid, at: time.Unix(0, ns)}, true
}
