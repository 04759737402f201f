package queue_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// No ignores (host/internal/daemon needs two, for gocraft/work's Drain):
// every test here lets its wake-ups end before it stops its pools, so a
// Drain goroutine left over is a leak. TestWakeBurstWhileBusy, skipped,
// shows how wake-ups beside one another leave one.
func TestMain(m *testing.M) { goleak.VerifyTestMain(redistest.WithCleanup(m)) }
