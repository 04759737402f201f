package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/berth-dev/berth/sdk"
)

// probe is the PROBE job.
type probe struct{}

func (probe) MaxFails() uint    { return 3 }
func (probe) ShouldRetry() bool { return true }

func (probe) Validate(p sdk.Parameters) error {
	if _, ok := p["report"].(string); !ok {
		return errors.New(`parameter "report" (host:port of the suite's UDP receiver) is required`)
	}
	return nil
}

func (probe) Run(ctx sdk.Context, p sdk.Parameters) error {
	conn, err := net.Dial("udp", p["report"].(string))
	if err != nil {
		return fmt.Errorf("probe: dial the report address: %w", err)
	}
	defer conn.Close()
	var tok [6]byte
	_, _ = rand.Read(tok[:])
	run, pid := hex.EncodeToString(tok[:]), os.Getpid()
	send := func(kind string) {
		_, _ = fmt.Fprintf(conn, "%s %s %s %d %d", kind, ctx.JobID(), run, pid, time.Now().UnixNano())
	}
	send("start")
	defer send("end")

	beat := 100 * time.Millisecond
	if ms, ok := p["beat_ms"].(float64); ok && ms >= 10 {
		beat = time.Duration(ms) * time.Millisecond
	}
	done := make(chan struct{})
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		t := time.NewTicker(beat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				send("beat")
			}
		}
	}()
	defer func() { close(done); <-beats }()

	secs, _ := p["hold_seconds"].(float64)
	hold := time.NewTimer(time.Duration(secs * float64(time.Second)))
	defer hold.Stop()
	select {
	case <-hold.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func main() {
	if err := sdk.Serve(sdk.Jobs{"PROBE": sdk.Typed[sdk.Parameters](probe{})}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
