package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-dev/berth/sdk/proto"
)

// sdkVersion is reported to the host in Describe.
const sdkVersion = "0.1.0"

// server is the plugin's gRPC Job service.
type server struct {
	proto.UnimplementedJobServer

	jobs   Jobs
	broker *plugin.GRPCBroker

	mu      sync.Mutex
	host    proto.HostClient
	running map[string]*jobContext
}

func newServer(jobs Jobs) *server {
	return &server{jobs: jobs, running: make(map[string]*jobContext)}
}

func (s *server) Describe(context.Context, *proto.DescribeRequest) (*proto.DescribeResponse, error) {
	resp := &proto.DescribeResponse{SdkVersion: sdkVersion}
	for name, j := range s.jobs {
		t := &proto.JobType{Name: name, MaxFails: uint32(j.MaxFails()), ShouldRetry: j.ShouldRetry()}
		if m, ok := j.(maxConcurrencyer); ok {
			t.MaxConcurrency = uint32(m.MaxConcurrency())
		}
		if v, ok := j.(versioner); ok {
			t.Version = v.Version()
		}
		resp.Jobs = append(resp.Jobs, t)
	}
	sort.Slice(resp.Jobs, func(a, b int) bool { return resp.Jobs[a].Name < resp.Jobs[b].Name })
	return resp, nil
}

// Attach dials the host's callback service once; every job of this process
// shares the connection.
func (s *server) Attach(_ context.Context, req *proto.AttachRequest) (*proto.AttachResponse, error) {
	if s.broker == nil {
		return nil, status.Error(codes.FailedPrecondition, "sdk: no go-plugin broker")
	}
	conn, err := s.broker.Dial(req.GetBrokerId())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "sdk: dial host callbacks (broker id %d): %v", req.GetBrokerId(), err)
	}
	s.mu.Lock()
	s.host = proto.NewHostClient(conn)
	s.mu.Unlock()
	return &proto.AttachResponse{}, nil
}

func (s *server) Validate(_ context.Context, req *proto.ValidateRequest) (*proto.ValidateResponse, error) {
	j, params, err := s.lookup(req.GetJobName(), req.GetParameters())
	if err != nil {
		return nil, err
	}
	if err := safeValidate(j, params); err != nil {
		return &proto.ValidateResponse{Error: err.Error()}, nil
	}
	return &proto.ValidateResponse{}, nil
}

func (s *server) Run(ctx context.Context, req *proto.RunRequest) (*proto.RunResponse, error) {
	j, params, err := s.lookup(req.GetJobName(), req.GetParameters())
	if err != nil {
		return nil, err
	}
	id := req.GetJobId()
	s.mu.Lock()
	host := s.host
	if _, dup := s.running[id]; dup {
		s.mu.Unlock()
		return nil, status.Errorf(codes.AlreadyExists, "sdk: job %s is already running in this plugin", id)
	}
	jc := newJobContext(ctx, id, req.GetProperties(), &grpcBridge{host: host})
	s.running[id] = jc
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		delete(s.running, id)
		s.mu.Unlock()
	}()
	runErr, panicked := safeRun(j, jc, params)
	jc.finish()
	resp := &proto.RunResponse{Panicked: panicked}
	if runErr != nil {
		resp.Error = runErr.Error()
		if resp.Error == "" {
			resp.Error = fmt.Sprintf("job returned an error with no message (%T)", runErr)
		}
	}
	return resp, nil
}

func (s *server) Signal(_ context.Context, req *proto.SignalRequest) (*proto.SignalResponse, error) {
	var cmd OPCommand
	switch req.GetCommand() {
	case proto.OPCommand_OP_COMMAND_STOP:
		cmd = OPStop
	case proto.OPCommand_OP_COMMAND_CANCEL:
		cmd = OPCancel
	default:
		return nil, status.Errorf(codes.InvalidArgument, "sdk: unknown op command %v", req.GetCommand())
	}
	s.mu.Lock()
	jc := s.running[req.GetJobId()]
	s.mu.Unlock()
	if jc == nil {
		return &proto.SignalResponse{}, nil
	}
	jc.signal(cmd)
	return &proto.SignalResponse{Found: true}, nil
}

func (s *server) lookup(name string, rawParams []byte) (Job, Parameters, error) {
	j, ok := s.jobs[name]
	if !ok {
		return nil, nil, status.Errorf(codes.NotFound, "sdk: this plugin does not serve job %q", name)
	}
	params, err := decodeParameters(rawParams)
	if err != nil {
		return nil, nil, status.Errorf(codes.InvalidArgument, "sdk: job %s: %v", name, err)
	}
	return j, params, nil
}

// decodeParameters decodes a JSON object; empty input is no parameters.
func decodeParameters(raw []byte) (Parameters, error) {
	params := Parameters{}
	if len(raw) == 0 {
		return params, nil
	}
	if err := json.Unmarshal(raw, &params); err != nil {
		return nil, fmt.Errorf("parameters are not a JSON object: %w", err)
	}
	if params == nil {
		params = Parameters{}
	}
	return params, nil
}

func safeValidate(j Job, params Parameters) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("Validate panicked: %v", v)
		}
	}()
	return j.Validate(params)
}

func safeRun(j Job, ctx Context, params Parameters) (err error, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			ctx.Logger().Error(fmt.Sprintf("Run panicked: %v\n%s", v, debug.Stack()))
			err, panicked = fmt.Errorf("Run panicked: %v", v), true
		}
	}()
	err = j.Run(ctx, params)
	if err == nil && ctx.Err() != nil {
		// Ended because it was told to: the host decides the final status,
		// but a job that was stopped has not succeeded.
		err = context.Cause(ctx)
	}
	return err, false
}

var errNotAttached = errors.New("sdk: the host has not attached its callback service")
