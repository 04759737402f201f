package joblog

import (
	"github.com/berth-dev/berth/host/internal/job"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

const logExt = ".log"

// File is the FILE backend: one file per job, <baseDir>/<jobID>.log, opened
// for append. It is also the Getter of those files, and its Sweeper method
// gives their sweeper.
type File struct {
	dir   string
	level Level
	now   func() time.Time
}

var (
	_ Backend = (*File)(nil)
	_ Getter  = (*File)(nil)
)

// NewFile returns the FILE backend writing entries of level and above under
// baseDir, which it creates (mode 0o755) if needed. now is the clock of the
// entries and of the sweeper; nil means time.Now.
func NewFile(baseDir string, level Level, now func() time.Time) (*File, error) {
	if baseDir == "" {
		return nil, errors.New("joblog: file backend: empty base_dir")
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(baseDir, 0o755); err != nil {
		return nil, fmt.Errorf("joblog: file backend: create base_dir: %w", err)
	}
	return &File{dir: filepath.Clean(baseDir), level: level, now: now}, nil
}

// Name returns FILE.
func (f *File) Name() string { return NameFile }

// path is only ever called with a valid ID.
func (f *File) path(jobID string) string {
	return filepath.Join(f.dir, jobID+logExt)
}

// Open returns the logger of the job's log file. The file is opened for
// append (and created with mode 0o644) at the first entry written, so a job
// that logs nothing costs no file: creating one takes about a millisecond
// on a journaled disk, more than a short job itself. A symbolic link in its
// place is refused where the system allows.
func (f *File) Open(jobID string) (Logger, error) {
	if !job.ValidID(jobID) {
		return nil, badID(jobID)
	}
	return &fileLogger{backend: f, path: f.path(jobID), id: jobID}, nil
}

type fileLogger struct {
	backend *File
	path    string
	id      string

	mu     sync.Mutex
	fh     *os.File // opened at the first entry
	err    error    // first open or write error
	closed bool
}

func (l *fileLogger) Log(level Level, msg string) {
	if level < l.backend.level {
		return
	}
	entry := appendEntry(nil, l.backend.now(), level, msg)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.fh == nil {
		if l.err != nil {
			return
		}
		fh, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|oNoFollow, 0o644)
		if err != nil {
			l.err = fmt.Errorf("joblog: open log of %s: %w", l.id, err)
			return
		}
		l.fh = fh
	}
	// One write per entry: with O_APPEND, even several loggers of one job
	// (in this process or another) cannot interleave inside an entry.
	if _, err := l.fh.Write(entry); err != nil && l.err == nil {
		l.err = err
	}
}

// Failed returns the first open or write error (the entries since were
// lost), or nil.
func (l *fileLogger) Failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close closes the file; there is nothing to flush, as entries are not
// buffered. It returns the first write error or the error of closing.
func (l *fileLogger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.err
	if l.fh != nil {
		err = errors.Join(err, l.fh.Close())
		l.fh = nil
	}
	if err != nil {
		return fmt.Errorf("joblog: close log: %w", err)
	}
	return nil
}

// Get returns at most the last limit bytes of the job's log (all of it if
// limit <= 0). When the cut falls inside a line, that partial line is
// dropped, unless the tail holds no line start at all. It reads without
// any lock, also while a logger still appends to the file; what is
// appended during the read may be left out.
func (f *File) Get(ctx context.Context, jobID string, limit int64) ([]byte, error) {
	if !job.ValidID(jobID) {
		return nil, badID(jobID)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fh, err := os.OpenFile(f.path(jobID), os.O_RDONLY|oNoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound(jobID)
	}
	if err != nil {
		return nil, fmt.Errorf("joblog: read log of %s: %w", jobID, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("joblog: read log of %s: %w", jobID, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("joblog: read log of %s: not a regular file: %w", jobID, ErrNotFound)
	}
	b, err := readTail(fh, fi.Size(), limit)
	if err != nil {
		return nil, fmt.Errorf("joblog: read log of %s: %w", jobID, err)
	}
	return b, nil
}

// readTail reads the last limit bytes of the first size bytes of r, cut
// after the first newline unless the window starts a line already (the
// byte before it is a newline) or holds no complete line start.
func readTail(r io.ReaderAt, size, limit int64) ([]byte, error) {
	if limit <= 0 || limit >= size {
		return readAt(r, 0, size)
	}
	// Read one byte more, before the window, to learn whether the window
	// starts a line.
	b, err := readAt(r, size-limit-1, limit+1)
	if err != nil {
		return nil, err
	}
	return lineTail(b), nil
}

// lineTail takes a window of a log preceded by the byte before it, and
// cuts the window after its first newline unless it starts a line already
// (that byte is a newline) or holds no complete line start. The FILE and
// REDIS getters share it.
func lineTail(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	if b[0] == '\n' {
		return b[1:]
	}
	w := b[1:]
	if i := bytes.IndexByte(w, '\n'); i >= 0 && i+1 < len(w) {
		return w[i+1:]
	}
	return w
}

// readAt reads n bytes at off, fewer if the file has shrunk meanwhile.
func readAt(r io.ReaderAt, off, n int64) ([]byte, error) {
	b := make([]byte, n)
	got, err := r.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:got], nil
}

// Sweeper returns the sweeper of this backend's directory: it removes the
// job log files whose modification time is more than retention ago. It
// looks only at regular files directly in the base directory whose name is
// a valid job ID plus ".log": it never follows a symbolic link, never
// enters a subdirectory and leaves every other file alone. A retention
// that is not positive makes Sweep fail without removing anything.
func (f *File) Sweeper(retention time.Duration) Sweeper {
	return &fileSweeper{backend: f, retention: retention}
}

type fileSweeper struct {
	backend   *File
	retention time.Duration
}

func (s *fileSweeper) Sweep(ctx context.Context) (int, error) {
	if s.retention <= 0 {
		return 0, fmt.Errorf("joblog: sweep: retention %v is not positive", s.retention)
	}
	dir := s.backend.dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("joblog: sweep %s: %w", dir, err)
	}
	cutoff := s.backend.now().Add(-s.retention)
	removed := 0
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		name := e.Name()
		id, ok := strings.CutSuffix(name, logExt)
		// The type comes from the directory entry (as lstat would give
		// it), so a symbolic link is never taken for a regular file.
		if !ok || !job.ValidID(id) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("joblog: sweep %s: %w", name, err))
			continue
		}
		if !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
			continue
		}
		// Remove unlinks the name: were it swapped for a link meanwhile,
		// the link would go, never its target.
		err = os.Remove(filepath.Join(dir, name))
		switch {
		case err == nil:
			removed++
		case errors.Is(err, fs.ErrNotExist):
		default:
			errs = append(errs, fmt.Errorf("joblog: sweep %s: %w", name, err))
		}
	}
	return removed, errors.Join(errs...)
}
