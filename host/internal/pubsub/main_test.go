package pubsub_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(redistest.WithCleanup(m)) }
