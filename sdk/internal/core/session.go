package core

import (
	"context"
	"errors"
	"sync"

	"github.com/berth-dev/berth/sdk/proto"
)

// session is the plugin's end of the host's one stream. Every run sends
// on it, one sender at a time (sendMu: a gRPC stream takes one sender at
// a time); the state (mu) is kept apart, so that a send that waits on
// the stream's flow control never holds up the handling of what the host
// sends.
type session struct {
	stream proto.Plugin_SessionServer

	sendMu sync.Mutex

	mu       sync.Mutex
	closed   error
	nextReq  uint64
	launches map[uint64]chan *proto.LaunchResult
}

func newSession(stream proto.Plugin_SessionServer) *session {
	return &session{stream: stream, launches: map[uint64]chan *proto.LaunchResult{}}
}

// errClosed: the session ended.
var errClosed = errors.New("the session with the host is closed")

func (s *session) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *session) send(m *proto.PluginMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.err(); err != nil {
		return err
	}
	if err := s.stream.Send(m); err != nil {
		s.mu.Lock()
		if s.closed == nil {
			s.closed = err
		}
		s.mu.Unlock()
		return err
	}
	return nil
}

// checkin sends a check-in; the host records it in order and does not
// answer.
func (s *session) checkin(jobID, message string) error {
	return s.send(&proto.PluginMessage{Msg: &proto.PluginMessage_Checkin{Checkin: &proto.Checkin{JobId: jobID, Message: message}}})
}

// launch sends a sub-job request through send (which may refuse) and
// waits for its answer.
func (s *session) launch(ctx context.Context, jobID string, request []byte, send func(func() error) error) ([]byte, error) {
	s.mu.Lock()
	if s.closed != nil {
		s.mu.Unlock()
		return nil, s.closed
	}
	s.nextReq++
	id := s.nextReq
	ch := make(chan *proto.LaunchResult, 1)
	s.launches[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.launches, id)
		s.mu.Unlock()
	}()
	m := &proto.PluginMessage{Msg: &proto.PluginMessage_Launch{Launch: &proto.Launch{JobId: jobID, RequestId: id, Request: request}}}
	if err := send(func() error { return s.send(m) }); err != nil {
		return nil, err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, errClosed
		}
		if r.GetError() != "" {
			return nil, errors.New(r.GetError())
		}
		return r.GetStats(), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// answer hands a launch result to its waiter.
func (s *session) answer(r *proto.LaunchResult) {
	s.mu.Lock()
	ch := s.launches[r.GetRequestId()]
	s.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// close ends the session for every sender and waiter.
func (s *session) close(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == nil {
		s.closed = err
	}
	for id, ch := range s.launches {
		close(ch)
		delete(s.launches, id)
	}
}
