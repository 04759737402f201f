package joblog

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(redistest.WithCleanup(m))
}

// t0 is the fixed time of the test clocks.
var t0 = time.Date(2026, 11, 21, 14, 3, 5, 0, time.UTC)

const (
	id1 = "0123456789abcdef01234567"
	id2 = "fedcba9876543210fedcba98"
	id3 = "0123456789abcdef01234567@1700000000"
)

func fixedClock(t time.Time) func() time.Time {
	return func() time.Time { return t }
}

type fileBundle struct {
	parent string // holds base and the files "outside" it
	base   string
	file   *File
}

// setupFile returns a FILE backend at level Debug, with the fixed clock t0,
// in <tempdir>/logs.
func setupFile(t *testing.T) fileBundle {
	t.Helper()
	return setupFileLevel(t, Debug, fixedClock(t0))
}

func setupFileLevel(t *testing.T, level Level, now func() time.Time) fileBundle {
	t.Helper()
	parent := t.TempDir()
	base := filepath.Join(parent, "logs")
	f, err := NewFile(base, level, now)
	if err != nil {
		t.Fatalf("NewFile: %v", err)
	}
	return fileBundle{parent: parent, base: base, file: f}
}

func (b fileBundle) read(t *testing.T, jobID string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.base, jobID+".log"))
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	return string(data)
}

func (b fileBundle) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(b.base, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustOpen(t *testing.T, b Backend, jobID string) Logger {
	t.Helper()
	l, err := b.Open(jobID)
	if err != nil {
		t.Fatalf("Open(%q): %v", jobID, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}
