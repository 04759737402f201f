package core

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-dev/berth/sdk/proto"
)

// Version is the Go sdk's version, reported to the host in Describe.
const Version = "0.2.0"

// server is the plugin's gRPC Plugin service.
type server struct {
	proto.UnimplementedPluginServer

	jobs  map[string]Job
	names []string
	conf  Config

	mu   sync.Mutex
	runs map[string]*JobContext
}

// Config is the plugin's configuration handling.
type Config struct {
	// Apply takes the plugin's section of the host configuration (a JSON
	// object); nil ignores it.
	Apply func(raw []byte) error
	// Schema is the JSON Schema of the section (nil: none).
	Schema []byte
}

func newServer(jobs map[string]Job, names []string, conf Config) *server {
	return &server{jobs: jobs, names: names, conf: conf, runs: map[string]*JobContext{}}
}

func (s *server) Describe(context.Context, *proto.DescribeRequest) (*proto.DescribeResponse, error) {
	resp := &proto.DescribeResponse{Sdk: "go/" + Version, ConfigSchema: s.conf.Schema}
	for _, name := range s.names {
		sp := s.jobs[name].spec
		if sp.Declare != nil {
			d := sp.Declare(*sp)
			sp = &d
		}
		resp.Jobs = append(resp.Jobs, &proto.JobType{
			Name: name, MaxFails: uint32(sp.MaxFails), ShouldRetry: sp.ShouldRetry, MaxConcurrency: uint32(sp.MaxConcurrency),
			Version: sp.Version, ParamsSchema: sp.ParamsSchema, Validates: sp.Validates, MaxSnoozes: uint32(sp.MaxSnoozes),
		})
	}
	return resp, nil
}

func (s *server) Configure(_ context.Context, req *proto.ConfigureRequest) (*proto.ConfigureResponse, error) {
	if s.conf.Apply == nil {
		return &proto.ConfigureResponse{}, nil
	}
	raw := req.GetConfig()
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if err := s.conf.Apply(raw); err != nil {
		return &proto.ConfigureResponse{Error: err.Error()}, nil
	}
	return &proto.ConfigureResponse{}, nil
}

func (s *server) Validate(_ context.Context, req *proto.ValidateRequest) (*proto.ValidateResponse, error) {
	j, ok := s.jobs[req.GetJobName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "sdk: this plugin does not serve job %q", req.GetJobName())
	}
	if err := safeValidate(j.spec, req.GetParameters()); err != nil {
		return &proto.ValidateResponse{Error: err.Error()}, nil
	}
	return &proto.ValidateResponse{}, nil
}

// Session serves the host's stream until the host closes it; the runs
// still going when it ends have their context ended.
func (s *server) Session(stream proto.Plugin_SessionServer) error {
	sess := newSession(stream)
	// The runs' contexts are not the stream's: the host ends a session by
	// cancelling its call, and a run must see why (ErrHostGone), not a
	// bare context.Canceled.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(ErrHostGone)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m, err := stream.Recv()
		if err != nil {
			// Contexts first: a call that fails because the session ended
			// finds its context ended too.
			cancel(ErrHostGone)
			sess.close(errClosed)
			return nil
		}
		switch x := m.GetMsg().(type) {
		case *proto.HostMessage_Start:
			s.start(ctx, sess, x.Start, &wg)
		case *proto.HostMessage_Stop:
			s.mu.Lock()
			jc := s.runs[x.Stop.GetJobId()]
			s.mu.Unlock()
			if jc != nil {
				jc.signal(x.Stop.GetReason())
			}
		case *proto.HostMessage_LaunchResult:
			sess.answer(x.LaunchResult)
		}
	}
}

// abandonAll ends every run's context with cause.
func (s *server) abandonAll(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, jc := range s.runs {
		jc.abandon(cause)
	}
}

// start runs a job in a goroutine of its own; its outcome ends its part
// of the session.
func (s *server) start(ctx context.Context, sess *session, st *proto.Start, wg *sync.WaitGroup) {
	id := st.GetJobId()
	fail := func(msg string) {
		_ = sess.send(&proto.PluginMessage{Msg: &proto.PluginMessage_Outcome{Outcome: &proto.Outcome{
			JobId: id, Kind: proto.Outcome_KIND_PERMANENT_ERROR, Error: msg}}})
	}
	j, ok := s.jobs[st.GetJobName()]
	if !ok {
		fail(fmt.Sprintf("sdk: this plugin does not serve job %q", st.GetJobName()))
		return
	}
	s.mu.Lock()
	if _, dup := s.runs[id]; dup {
		s.mu.Unlock()
		fail(fmt.Sprintf("sdk: job %s is already running in this plugin", id))
		return
	}
	jc := newJobContext(ctx, st, sess)
	s.runs[id] = jc
	s.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		out := runJob(j.spec, jc, st.GetParameters())
		jc.finish()
		s.mu.Lock()
		delete(s.runs, id)
		s.mu.Unlock()
		_ = sess.send(&proto.PluginMessage{Msg: &proto.PluginMessage_Outcome{Outcome: out}})
	}()
}

// runJob runs a job and words its outcome.
func runJob(sp *Spec, jc *JobContext, params []byte) *proto.Outcome {
	out := &proto.Outcome{JobId: jc.id}
	err, panicked := safeRun(sp, jc, params)
	var snz *snooze
	var perm *permanent
	switch {
	case panicked:
		out.Kind, out.Error, out.Panicked = proto.Outcome_KIND_ERROR, err.Error(), true
	case err == nil && jc.Err() != nil:
		// Ended because it was told to, and said nothing: the host knows
		// why (stop, cancel, shutdown), but a job that was ended has not
		// succeeded.
		out.Kind, out.Error = proto.Outcome_KIND_ERROR, context.Cause(jc).Error()
	case err == nil:
		out.Kind, out.Output = proto.Outcome_KIND_SUCCESS, jc.outputJSON()
	case errors.As(err, &snz):
		out.Kind, out.Error, out.SnoozeMillis = proto.Outcome_KIND_SNOOZE, snz.reason, snz.after.Milliseconds()
	case errors.As(err, &perm):
		out.Kind, out.Error = proto.Outcome_KIND_PERMANENT_ERROR, errorText(err)
	default:
		out.Kind, out.Error = proto.Outcome_KIND_ERROR, errorText(err)
	}
	return out
}

func errorText(err error) string {
	if msg := err.Error(); msg != "" {
		return msg
	}
	return fmt.Sprintf("the job returned an error with no message (%T)", err)
}

func safeValidate(sp *Spec, params []byte) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("Validate panicked: %v", v)
		}
	}()
	return sp.Validate(params)
}

func safeRun(sp *Spec, jc *JobContext, params []byte) (err error, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			jc.Logger().Error(fmt.Sprintf("Run panicked: %v\n%s", v, debug.Stack()))
			err, panicked = fmt.Errorf("Run panicked: %v", v), true
		}
	}()
	return sp.Run(jc, params), false
}
