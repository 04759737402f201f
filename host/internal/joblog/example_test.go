package joblog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/host/internal/joblog"
)

func Example() {
	dir, err := os.MkdirTemp("", "joblog-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	clock := func() time.Time { return time.Date(2026, 11, 21, 14, 3, 5, 0, time.UTC) }
	file, err := joblog.NewFile(filepath.Join(dir, "job_logs"), joblog.Info, clock)
	if err != nil {
		panic(err)
	}
	m := joblog.NewManager([]joblog.Backend{file}, file, []joblog.Sweeper{file.Sweeper(24 * time.Hour)}, time.Hour, nil)

	const id = "0123456789abcdef01234567"
	l, err := m.Open(id)
	if err != nil {
		panic(err)
	}
	l.Log(joblog.Debug, "dropped: below INFO")
	l.Log(joblog.Info, "started")
	l.Log(joblog.Warning, "half done")

	// The log is readable while the job still writes it.
	b, err := m.Get(context.Background(), id, 1<<20)
	if err != nil {
		panic(err)
	}
	fmt.Print(string(b))
	_ = l.Close()

	_, err = m.Get(context.Background(), "../../etc/passwd", 0)
	fmt.Println(err)
	// Output:
	// 2026-11-21T14:03:05Z [INFO] started
	// 2026-11-21T14:03:05Z [WARNING] half done
	// joblog: invalid job ID: "../../etc/passwd"
}
