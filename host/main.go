package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/daemon"
	"github.com/berth-dev/berth/host/internal/servicelog"
)

func main() {
	path := flag.String("c", "", "path of the YAML configuration (optional: defaults and environment variables otherwise)")
	flag.Parse()
	if err := run(*path); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return err
	}
	log, closeLog, err := servicelog.New(cfg.Loggers, os.Stdout)
	if err != nil {
		return err
	}
	defer closeLog()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	h := daemon.New(daemon.Options{Config: cfg, Logger: log, Stdout: os.Stdout})
	if err := h.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err = <-h.Err():
		log.Error("the host failed", "error", err)
	}
	stop() // a second signal kills the process at once
	h.Stop()
	return err
}
