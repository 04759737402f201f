package queue_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// No ignores: the pools never call gocraft/work's Drain (whose calls
// could wait forever), and every test stops its pools, so any goroutine
// left over is a leak.
func TestMain(m *testing.M) { goleak.VerifyTestMain(redistest.WithCleanup(m)) }
