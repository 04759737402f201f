package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/sdk/proto"
)

// session is the host's end of a plugin process's one stream. A reader
// goroutine hands each message to the inbox of its run, so that the runs
// of a process never wait on one another; each run's messages are taken
// in order by the goroutine that runs it (Host.Run). Sends are
// serialised, since a gRPC stream takes one sender at a time.
type session struct {
	stream proto.Plugin_SessionClient
	cancel context.CancelFunc

	sendMu sync.Mutex

	mu   sync.Mutex
	runs map[string]*inbox
	err  error         // why the session ended
	dead chan struct{} // closed when it ended
}

// openSession opens the session of a process; it lasts until ctx ends or
// the plugin breaks it.
func openSession(ctx context.Context, c proto.PluginClient) (*session, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.Session(ctx, proto.GRPCCallOptions()...)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &session{stream: stream, cancel: cancel, runs: map[string]*inbox{}, dead: make(chan struct{})}
	go s.read()
	return s, nil
}

func (s *session) read() {
	for {
		m, err := s.stream.Recv()
		if err != nil {
			s.end(err)
			return
		}
		id := jobIDOf(m)
		s.mu.Lock()
		in := s.runs[id]
		s.mu.Unlock()
		if in != nil {
			// Check-ins and log lines wait in the inbox for the window (or
			// for a message that needs the run at once), so that a job that
			// talks wakes its run once per window, not once per message.
			in.put(m, m.GetCheckin() != nil || m.GetLogs() != nil)
		}
		// A message of a run that is not registered (it ended, was given
		// up, or never was) has nobody to read it.
	}
}

func jobIDOf(m *proto.PluginMessage) string {
	switch x := m.GetMsg().(type) {
	case *proto.PluginMessage_Checkin:
		return x.Checkin.GetJobId()
	case *proto.PluginMessage_Logs:
		return x.Logs.GetJobId()
	case *proto.PluginMessage_Launch:
		return x.Launch.GetJobId()
	case *proto.PluginMessage_Outcome:
		return x.Outcome.GetJobId()
	}
	return ""
}

// end marks the session over; every run sees it.
func (s *session) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	close(s.dead)
}

// close ends the session from the host's side.
func (s *session) close() {
	s.cancel()
	s.end(errors.New("the host closed the session"))
}

func (s *session) send(m *proto.HostMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	select {
	case <-s.dead:
		return s.err
	default:
	}
	return s.stream.Send(m)
}

// errRunning: the job already runs in this process.
var errRunning = errors.New("the job is already running in this plugin process")

// begin registers a run; its messages go to the returned inbox, whose
// lazy messages wait up to window.
func (s *session) begin(jobID string, window time.Duration) (*inbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if _, dup := s.runs[jobID]; dup {
		return nil, fmt.Errorf("%w: %s", errRunning, jobID)
	}
	in := newInbox(window)
	s.runs[jobID] = in
	return in, nil
}

// finish unregisters a run; what it did not read is dropped.
func (s *session) finish(jobID string) {
	s.mu.Lock()
	in := s.runs[jobID]
	delete(s.runs, jobID)
	s.mu.Unlock()
	if in != nil {
		in.close()
	}
}

func (s *session) has(jobID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.runs[jobID]
	return ok
}

// maxInbox bounds what a run's inbox holds before the session's reader
// waits for the run to catch up (so a flood from one plugin slows that
// plugin, not the host's memory).
const maxInbox = 16 << 10

// inbox is the queue of one run's messages. A lazy message does not wake
// the run: it arms a timer of the window, when none is armed, and the run
// wakes when the timer fires (due) or a message that is not lazy comes.
type inbox struct {
	window time.Duration
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*proto.PluginMessage
	notify chan struct{}
	closed bool
	timer  *time.Timer // armed for lazy messages
	due    bool        // the timer fired since the last take
}

func newInbox(window time.Duration) *inbox {
	in := &inbox{window: window, notify: make(chan struct{}, 1)}
	in.cond = sync.NewCond(&in.mu)
	return in
}

func (in *inbox) put(m *proto.PluginMessage, lazy bool) {
	in.mu.Lock()
	for len(in.queue) >= maxInbox && !in.closed {
		in.cond.Wait()
	}
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.queue = append(in.queue, m)
	if lazy {
		if in.timer == nil {
			in.timer = time.AfterFunc(in.window, in.fire)
		}
		in.mu.Unlock()
		return
	}
	in.mu.Unlock()
	in.wake()
}

func (in *inbox) fire() {
	in.mu.Lock()
	in.timer, in.due = nil, true
	in.mu.Unlock()
	in.wake()
}

func (in *inbox) wake() {
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

// take returns what is queued, and whether the window of lazy messages
// has passed since the last take.
func (in *inbox) take() ([]*proto.PluginMessage, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	q, due := in.queue, in.due
	in.queue, in.due = nil, false
	in.cond.Broadcast()
	return q, due
}

// close drops what is queued and releases a waiting reader.
func (in *inbox) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed, in.queue = true, nil
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
	in.cond.Broadcast()
}
