package joblog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

// TestBadIDs: every function that takes a job ID refuses a malformed one
// with ErrBadID, before it creates, reads or writes any file.
func TestBadIDs(t *testing.T) {
	t.Parallel()
	ids := []struct{ name, id string }{
		{"EtcPasswd", "../../etc/passwd"},
		{"DotDot", ".."},
		{"Dot", "."},
		{"Slash", "a/b"},
		{"UpperHex", strings.ToUpper("abcdefabcdefabcdefabcdef")},
		{"Empty", ""},
		{"OutsideVictim", "../victim"},
		{"AbsoluteVictim", "/victim"},
		{"HexThenTraversal", id1 + "/../../victim"},
		{"PeriodicTraversal", id1 + "@1/../../victim"},
		{"NUL", id1 + "\x00"},
	}
	for _, tt := range ids {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupFile(t)
			// victim.log sits where "<base>/../victim" + ".log" points.
			victim := filepath.Join(b.parent, "victim.log")
			if err := os.WriteFile(victim, []byte("victim\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-365 * 24 * time.Hour)
			if err := os.Chtimes(victim, old, old); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			m := NewManager([]Backend{b.file, NewStdOutput(&procs.Buffer{}, Debug)}, b.file, nil, time.Hour, nil)

			checkBad := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrBadID) {
					t.Errorf("%s(%q) = %v, want ErrBadID", what, tt.id, err)
				}
			}
			l, err := b.file.Open(tt.id)
			checkBad("File.Open", err)
			if l != nil {
				l.Log(Fatal, "pwned")
				_ = l.Close()
			}
			got, err := b.file.Get(ctx, tt.id, 0)
			checkBad("File.Get", err)
			if len(got) != 0 {
				t.Errorf("File.Get returned %q", got)
			}
			l, err = NewStdOutput(&procs.Buffer{}, Debug).Open(tt.id)
			checkBad("StdOutput.Open", err)
			if l != nil {
				_ = l.Close()
			}
			l, err = m.Open(tt.id)
			checkBad("Manager.Open", err)
			if l != nil {
				l.Log(Fatal, "pwned")
				_ = l.Close()
			}
			got, err = m.Get(ctx, tt.id, 0)
			checkBad("Manager.Get", err)
			if len(got) != 0 {
				t.Errorf("Manager.Get returned %q", got)
			}

			entries, err := os.ReadDir(b.base)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("base dir not empty: %s", e.Name())
			}
			fi, err := os.Stat(victim)
			if err != nil {
				t.Fatalf("victim: %v", err)
			}
			if data, _ := os.ReadFile(victim); string(data) != "victim\n" || !fi.ModTime().Equal(old) {
				t.Fatalf("victim touched: %q, mtime %v", data, fi.ModTime())
			}
			if entries, _ := os.ReadDir(b.parent); len(entries) != 2 {
				t.Fatalf("files created beside the base dir: %d entries", len(entries))
			}
		})
	}
}
