package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/plugins/scan/adapter/osv"
	"github.com/berth-dev/berth/plugins/scan/adapter/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "scanner:", err)
		os.Exit(2)
	}
}

// options are the adapter's flags.
type options struct {
	addr, apiKey, advisories, logLevel string
	maxScans, queue                    int
	refreshAfter, retention, pullTO    time.Duration
	skipVerify                         bool
}

// envPrefix starts the name of every flag's env variable.
const envPrefix = "BERTH_SCANNER_"

// envName is the env variable of a flag: -api-key is BERTH_SCANNER_API_KEY.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse reads the env variables, then the flags.
func parse(args []string, lookup func(string) (string, bool), out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("scanner", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8090", "`host:port` to serve the scanner API on")
	fs.StringVar(&o.apiKey, "api-key", "", "the API key clients send in the X-ScannerAdapter-API-Key header (required)")
	fs.StringVar(&o.advisories, "advisories", "", "`path` of the OSV advisories: a directory of *.json files, or one file (required)")
	fs.IntVar(&o.maxScans, "max-scans", server.DefaultMaxScans, "scans that run at once")
	fs.IntVar(&o.queue, "queue", server.DefaultQueue, "accepted scans that may wait for a free slot; more are answered 503")
	fs.DurationVar(&o.refreshAfter, "refresh-after", server.DefaultRefreshAfter, "the Refresh-After of a report that is not ready (whole seconds)")
	fs.DurationVar(&o.retention, "retention", server.DefaultRetention, "how long a finished scan's report is kept")
	fs.DurationVar(&o.pullTO, "pull-timeout", server.DefaultPullTimeout, "bound of one scan's pull and read")
	fs.BoolVar(&o.skipVerify, "registry-skip-verify", false, "do not verify registries' TLS certificates")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: scanner -api-key KEY -advisories PATH [flags]\n\n"+
			"Berth's offline scanner adapter: Harbor's Pluggable Scanner API over OSV advisories.\n"+
			"Every flag may also be set by the env variable named beside it; a flag wins.\n\n")
		fs.PrintDefaults()
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := lookup(envName(f.Name))
		if !ok || envErr != nil {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("env %s: %v", envName(f.Name), err)
		}
	})
	if envErr != nil {
		return o, envErr
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q (see -h)", fs.Args())
	case o.apiKey == "":
		return o, fmt.Errorf("-api-key (or %s) is required", envName("api-key"))
	case o.advisories == "":
		return o, fmt.Errorf("-advisories (or %s) is required", envName("advisories"))
	case o.maxScans < 1:
		return o, fmt.Errorf("-max-scans must be at least 1, got %d", o.maxScans)
	case o.queue < 1:
		return o, fmt.Errorf("-queue must be at least 1, got %d", o.queue)
	case o.refreshAfter < time.Second:
		return o, fmt.Errorf("-refresh-after must be at least 1s, got %s", o.refreshAfter)
	}
	return o, nil
}

func level(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("-log-level must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// run serves until ctx ends.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stderr io.Writer) error {
	o, err := parse(args, lookup, stderr)
	if err != nil {
		return err
	}
	lvl, err := level(o.logLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	db, err := osv.Load(o.advisories)
	if err != nil {
		return err
	}
	log.Info("advisories loaded", "path", o.advisories, "advisories", db.Len(), "unsupported_packages", db.Unsupported())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: o.skipVerify}
	if o.skipVerify {
		log.Warn("registries' TLS certificates are not verified (-registry-skip-verify)")
	}
	srv, err := server.New(server.Config{
		APIKey: o.apiKey, DB: db, MaxScans: o.maxScans, Queue: o.queue, RefreshAfter: o.refreshAfter,
		Retention: o.retention, PullTimeout: o.pullTO, RegistryTransport: tr, Logger: log,
	})
	if err != nil {
		return err
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	if err := srv.Start(ctx); err != nil {
		l.Close()
		return err
	}
	defer srv.Stop()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	log.Info("serving the Pluggable Scanner API", "addr", l.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	return nil
}
