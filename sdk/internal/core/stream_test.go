package core

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-dev/berth/sdk/proto"
)

// fakeStream is the plugin's end of a session without gRPC: the test plays
// the host, writing to in and reading from out.
type fakeStream struct {
	grpc.ServerStream // nil: the server uses Context, Send and Recv only

	ctx context.Context
	// in and out are buffered, as gRPC's transport is: a sender does not
	// wait for the other side's Recv.
	in  chan *proto.HostMessage   // closed: the host closed its side (io.EOF)
	out chan *proto.PluginMessage // what the plugin sent
	// onSend, when set (before the first Start), sees every message as it
	// is sent.
	onSend func(*proto.PluginMessage)
}

func (s *fakeStream) Context() context.Context { return s.ctx }

func (s *fakeStream) Recv() (*proto.HostMessage, error) {
	select {
	case m, ok := <-s.in:
		if !ok {
			return nil, io.EOF
		}
		return m, nil
	case <-s.ctx.Done():
		// What gRPC returns when the call's context ends.
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
}

func (s *fakeStream) Send(m *proto.PluginMessage) error {
	if s.onSend != nil {
		s.onSend(m)
	}
	select {
	case s.out <- m:
		return nil
	case <-s.ctx.Done():
		return status.Error(codes.Canceled, "the call is over")
	}
}

// host is a test's host end of one session with a server of jobs.
type host struct {
	t      *testing.T
	srv    *server
	stream *fakeStream
	// done is closed when Session returned.
	done <-chan struct{}

	closeOnce sync.Once
}

// setup serves jobs on a fresh session; the session is closed and every
// run awaited when the test ends.
func setup(t *testing.T, jobs map[string]Job) *host {
	t.Helper()
	names, err := checkJobs(jobs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &host{t: t, srv: newServer(jobs, names, Config{}),
		stream: &fakeStream{ctx: ctx, in: make(chan *proto.HostMessage, 64), out: make(chan *proto.PluginMessage, 64)}}
	h.done = async(func() {
		if err := h.srv.Session(h.stream); err != nil {
			t.Errorf("Session = %v, want nil", err)
		}
	})
	t.Cleanup(func() {
		h.closeSession()
		deadline := time.After(waitLimit)
		for {
			select {
			case <-h.stream.out:
			case <-h.done:
				cancel()
				return
			case <-deadline:
				t.Error("Session did not return after the host closed it")
				cancel()
				return
			}
		}
	})
	return h
}

// send hands the plugin a message. Like a gRPC client's Send, it does not
// wait for the plugin to read it (up to a buffer's worth).
func (h *host) send(m *proto.HostMessage) {
	h.t.Helper()
	select {
	case h.stream.in <- m:
	case <-time.After(waitLimit):
		h.t.Fatalf("the session did not take %v", m)
	}
}

func (h *host) start(st *proto.Start) {
	h.t.Helper()
	h.send(&proto.HostMessage{Msg: &proto.HostMessage_Start{Start: st}})
}

// run starts job name as id with params (JSON; "" for none).
func (h *host) run(id, name, params string) {
	h.t.Helper()
	h.start(&proto.Start{JobId: id, JobName: name, Parameters: []byte(params), Attempt: 1})
}

func (h *host) stop(id string, reason proto.StopReason) {
	h.t.Helper()
	h.send(&proto.HostMessage{Msg: &proto.HostMessage_Stop{Stop: &proto.Stop{JobId: id, Reason: reason}}})
}

func (h *host) launched(l *proto.Launch, newID, errText string) {
	h.t.Helper()
	var stats []byte
	if newID != "" {
		stats, _ = json.Marshal(map[string]string{"id": newID})
	}
	h.send(&proto.HostMessage{Msg: &proto.HostMessage_LaunchResult{LaunchResult: &proto.LaunchResult{
		JobId: l.GetJobId(), RequestId: l.GetRequestId(), Stats: stats, Error: errText}}})
}

// closeSession closes the host's side of the session (io.EOF).
func (h *host) closeSession() { h.closeOnce.Do(func() { close(h.stream.in) }) }

// next returns the next message the plugin sent.
func (h *host) next() *proto.PluginMessage {
	h.t.Helper()
	return receive(h.t, h.stream.out, "a message from the plugin")
}

// outcome plays a patient host until the outcome of job id: launches get
// an ID. It returns the outcome and every message
// that came before it.
func (h *host) outcome(id string) (*proto.Outcome, []*proto.PluginMessage) {
	h.t.Helper()
	var seen []*proto.PluginMessage
	for {
		m := h.next()
		switch x := m.GetMsg().(type) {
		case *proto.PluginMessage_Launch:
			h.launched(x.Launch, "sub-of-"+x.Launch.GetJobId(), "")
		case *proto.PluginMessage_Outcome:
			if x.Outcome.GetJobId() == id {
				return x.Outcome, seen
			}
		}
		seen = append(seen, m)
	}
}

// jobOf makes a job of run with no parameter checks.
func jobOf(run func(jc *JobContext, params []byte) error) Job {
	return NewJob(Spec{ShouldRetry: true, Run: run, Validate: func([]byte) error { return nil }})
}

// logLines are the messages of the log entries among msgs.
func logLines(msgs []*proto.PluginMessage) []string {
	var out []string
	for _, m := range msgs {
		for _, e := range m.GetLogs().GetEntries() {
			out = append(out, e.GetMessage())
		}
	}
	return out
}
