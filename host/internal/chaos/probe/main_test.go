package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

var job = sdk.Typed[sdk.Parameters](probe{})

// listen returns a UDP receiver and a function that reads its reports
// (up to 2 s for each).
func listen(t *testing.T) (string, func() []string) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	read := func() []string {
		var out []string
		buf := make([]byte, 512)
		for range 1000 {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return out
			}
			out = append(out, string(buf[:n]))
			if strings.HasPrefix(out[len(out)-1], "end ") {
				return out
			}
		}
		return out
	}
	return conn.LocalAddr().String(), read
}

func TestARunReportsStartBeatsAndEnd(t *testing.T) {
	t.Parallel()
	addr, read := listen(t)
	res := sdktest.Run(t, job, map[string]any{"report": addr, "hold_seconds": 0.25, "beat_ms": 20},
		sdktest.WithJobID("0123456789abcdef01234567"))
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run: %+v", res)
	}
	got := read()
	if len(got) < 4 || !strings.HasPrefix(got[0], "start 0123456789abcdef01234567 ") || !strings.HasPrefix(got[len(got)-1], "end ") {
		t.Fatalf("reports %q: want start, beats, end", got)
	}
	run := strings.Fields(got[0])[2]
	for _, r := range got {
		if f := strings.Fields(r); len(f) != 5 || f[2] != run {
			t.Fatalf("report %q: want 5 fields of run %s", r, run)
		}
	}
}

func TestAStoppedRunEndsAtOnce(t *testing.T) {
	t.Parallel()
	addr, read := listen(t)
	r := sdktest.Start(t, job, map[string]any{"report": addr, "hold_seconds": 60})
	start := time.Now()
	r.Stop()
	res := r.Wait()
	if res.Kind == sdktest.Succeeded || time.Since(start) > 5*time.Second {
		t.Fatalf("stopped run: %+v after %s", res, time.Since(start))
	}
	if got := read(); len(got) < 2 || !strings.HasPrefix(got[len(got)-1], "end ") {
		t.Fatalf("reports %q: want an end", got)
	}
}

func TestValidateWantsAReportAddress(t *testing.T) {
	t.Parallel()
	if err := sdktest.Validate(t, job, map[string]any{"hold_seconds": 1}); err == nil {
		t.Fatal("no error without report")
	}
	if err := sdktest.Validate(t, job, map[string]any{"report": "127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
}
