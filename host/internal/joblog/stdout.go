package joblog

import (
	"github.com/berth-dev/berth/host/internal/job"

	"bytes"
	"io"
	"sync"
	"time"
)

// stdOutput is the STD_OUTPUT backend. All the loggers it opens share one
// writer and one lock, so entries of different jobs never interleave.
type stdOutput struct {
	level Level
	now   func() time.Time

	mu sync.Mutex // guards w
	w  io.Writer
}

// NewStdOutput returns the STD_OUTPUT backend: entries of level and above
// go to w (os.Stdout in the daemon), every line of an entry prefixed with
// the job ID and a space. It has no getter and no sweeper.
func NewStdOutput(w io.Writer, level Level) Backend {
	return &stdOutput{level: level, now: time.Now, w: w}
}

func (s *stdOutput) Name() string { return NameStdOutput }

func (s *stdOutput) Open(jobID string) (Logger, error) {
	if !job.ValidID(jobID) {
		return nil, badID(jobID)
	}
	return &stdLogger{backend: s, prefix: jobID + " "}, nil
}

type stdLogger struct {
	backend *stdOutput
	prefix  string

	mu     sync.Mutex
	closed bool
	err    error // first write error
}

func (l *stdLogger) Log(level Level, msg string) {
	s := l.backend
	if level < s.level {
		return
	}
	entry := appendEntry(nil, s.now(), level, msg)
	// One prefix per line: "<id> <time> [LEVEL] first\n<id> second\n".
	lines := bytes.Count(entry, []byte{'\n'})
	buf := make([]byte, 0, len(entry)+lines*len(l.prefix))
	for len(entry) > 0 {
		i := bytes.IndexByte(entry, '\n')
		buf = append(buf, l.prefix...)
		buf = append(buf, entry[:i+1]...)
		entry = entry[i+1:]
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	s.mu.Lock()
	_, err := s.w.Write(buf)
	s.mu.Unlock()
	if err != nil && l.err == nil {
		l.err = err
	}
}

// Close reports the first write error. The shared writer stays open: it
// belongs to the caller of NewStdOutput.
func (l *stdLogger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.err
}
