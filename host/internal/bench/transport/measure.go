package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Modes.
const (
	ModeUnary  = "unary"   // one call per job
	ModePerJob = "per-job" // one stream per job
	ModeShared = "shared"  // one stream for every job
)

// Result is one measurement.
type Result struct {
	Mode      string
	Jobs      int
	Callbacks int
	PerSecond float64
	// CPU is the CPU time of both ends per job.
	CPU time.Duration
}

// Measure runs jobs runs (each a start, callbacks messages from the
// "plugin" and an outcome) with workers at once, carried as mode, and
// measures both ends. cpu returns the process's CPU time so far.
func Measure(ctx context.Context, mode string, jobs, workers, callbacks int, cpu func() time.Duration) (Result, error) {
	dir, err := os.MkdirTemp("", "berth-bench-transport-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		return Result{}, err
	}
	serverTLS, clientTLS, err := mutualTLS()
	if err != nil {
		return Result{}, err
	}
	srv := grpc.NewServer(grpc.Creds(serverTLS))
	RegisterRunsServer(srv, &plugin{callbacks: callbacks})
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	conn, err := grpc.NewClient("unix://"+l.Addr().String(), grpc.WithTransportCredentials(clientTLS), grpc.WithAuthority("localhost"))
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	h, err := newHost(ctx, NewRunsClient(conn), mode)
	if err != nil {
		return Result{}, err
	}
	defer h.close()
	for i := range 200 { // warm up: connections, TLS, buffers
		if err := h.run(ctx, fmt.Sprintf("warm%020d", i)); err != nil {
			return Result{}, err
		}
	}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	c0, start := cpu(), time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(jobs) || ctx.Err() != nil {
					return
				}
				if err := h.run(ctx, fmt.Sprintf("%024d", i)); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return Result{}, firstErr
	}
	el, used := time.Since(start), cpu()-c0
	return Result{Mode: mode, Jobs: jobs, Callbacks: callbacks, PerSecond: float64(jobs) / el.Seconds(), CPU: used / time.Duration(jobs)}, ctx.Err()
}

var (
	params = []byte(`{"image":"demo","hold_seconds":0}`)
	props  = map[string]string{"job_id": "0123456789abcdef01234567", "job_name": "NOOP", "revision": "1700000000", "core_url": "http://core:8080"}
)

// plugin is the plugin's end: it answers each start with callbacks
// check-ins and an outcome.
type plugin struct {
	UnimplementedRunsServer
	callbacks int
}

func (p *plugin) Unary(context.Context, *Msg) (*Msg, error) { return &Msg{Kind: 9}, nil }

func (p *plugin) PerJob(st Runs_PerJobServer) error {
	m, err := st.Recv()
	if err != nil {
		return err
	}
	for range p.callbacks {
		if err := st.Send(&Msg{JobId: m.JobId, Kind: 2, Payload: []byte("progress 50%")}); err != nil {
			return err
		}
	}
	if err := st.Send(&Msg{JobId: m.JobId, Kind: 9}); err != nil {
		return err
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (p *plugin) Shared(st Runs_SharedServer) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m, err := st.Recv()
		if err != nil {
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			for range p.callbacks {
				_ = st.Send(&Msg{JobId: m.JobId, Kind: 2, Payload: []byte("progress 50%")})
			}
			_ = st.Send(&Msg{JobId: m.JobId, Kind: 9})
		}()
	}
}

// host is the host's end.
type host struct {
	c    RunsClient
	mode string

	shared  Runs_SharedClient
	sendMu  sync.Mutex
	mu      sync.Mutex
	waiting map[string]chan struct{}
}

func newHost(ctx context.Context, c RunsClient, mode string) (*host, error) {
	h := &host{c: c, mode: mode, waiting: map[string]chan struct{}{}}
	switch mode {
	case ModeUnary, ModePerJob:
		return h, nil
	case ModeShared:
		st, err := c.Shared(ctx)
		if err != nil {
			return nil, err
		}
		h.shared = st
		go h.read()
		return h, nil
	}
	return nil, fmt.Errorf("transport: unknown mode %q", mode)
}

func (h *host) read() {
	for {
		m, err := h.shared.Recv()
		if err != nil {
			return
		}
		if m.Kind == 9 {
			h.mu.Lock()
			ch := h.waiting[m.JobId]
			delete(h.waiting, m.JobId)
			h.mu.Unlock()
			if ch != nil {
				close(ch)
			}
		}
	}
}

func (h *host) close() {
	if h.shared != nil {
		_ = h.shared.CloseSend()
	}
}

func (h *host) run(ctx context.Context, id string) error {
	start := &Msg{JobId: id, Kind: 1, Payload: params, Properties: props}
	switch h.mode {
	case ModeUnary:
		_, err := h.c.Unary(ctx, start)
		return err
	case ModePerJob:
		st, err := h.c.PerJob(ctx)
		if err != nil {
			return err
		}
		if err := st.Send(start); err != nil {
			return err
		}
		for {
			m, err := st.Recv()
			if err != nil {
				return err
			}
			if m.Kind == 9 {
				break
			}
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		if _, err := st.Recv(); !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	}
	ch := make(chan struct{})
	h.mu.Lock()
	h.waiting[id] = ch
	h.mu.Unlock()
	h.sendMu.Lock()
	err := h.shared.Send(start)
	h.sendMu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mutualTLS is a certificate for both ends, as go-plugin's AutoMTLS makes.
func mutualTLS() (server, client credentials.TransportCredentials, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	server = credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	client = credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	return server, client, nil
}
