package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-dev/berth/sdk/proto"
)

// Callbacks is what the host does when a running job calls back.
type Callbacks interface {
	// Checkin records a running job's progress message.
	Checkin(ctx context.Context, jobID, message string) error
	// Log appends entries to a running job's log.
	Log(ctx context.Context, jobID string, entries []*proto.LogEntry) error
	// LaunchJob submits a sub-job of parentID from the JSON of a Harbor
	// job request's "job" object, and returns the new job's stats as JSON.
	LaunchJob(ctx context.Context, parentID string, request []byte) ([]byte, error)
}

// grpcPlugin is the host side of go-plugin's GRPCPlugin for one process.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	newCallbackServer func() *callbackServer
}

func (p *grpcPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("pluginhost: the host does not serve jobs")
}

// GRPCClient starts the callback service on the broker (once per process)
// and returns the client of the plugin's Job service. ctx ends when the
// plugin process exits.
func (p *grpcPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	cb := p.newCallbackServer()
	id := broker.NextId()
	go broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(append(opts, proto.GRPCServerOptions()...)...)
		proto.RegisterHostServer(s, cb)
		return s
	})
	return &pluginClient{job: proto.NewJobClient(conn), brokerID: id, exited: ctx.Done(), callbacks: cb}, nil
}

// pluginClient is one running plugin process, as seen from the host.
type pluginClient struct {
	job       proto.JobClient
	brokerID  uint32
	exited    <-chan struct{}
	callbacks *callbackServer
}

// callbackServer serves the Host service to one plugin process. A plugin
// may only speak for the jobs it is running.
type callbackServer struct {
	proto.UnimplementedHostServer
	cb Callbacks

	mu      sync.Mutex
	running map[string]int
}

func newCallbackServer(cb Callbacks) *callbackServer {
	return &callbackServer{cb: cb, running: make(map[string]int)}
}

func (s *callbackServer) track(jobID string) func() {
	s.mu.Lock()
	s.running[jobID]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.running[jobID]--; s.running[jobID] <= 0 {
			delete(s.running, jobID)
		}
		s.mu.Unlock()
	}
}

func (s *callbackServer) check(jobID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[jobID] == 0 {
		return status.Errorf(codes.FailedPrecondition, "job %s is not running in this plugin", jobID)
	}
	return nil
}

func (s *callbackServer) Checkin(ctx context.Context, req *proto.CheckinRequest) (*proto.CheckinResponse, error) {
	if err := s.check(req.GetJobId()); err != nil {
		return nil, err
	}
	if err := s.cb.Checkin(ctx, req.GetJobId(), req.GetMessage()); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &proto.CheckinResponse{}, nil
}

func (s *callbackServer) Log(ctx context.Context, req *proto.LogRequest) (*proto.LogResponse, error) {
	if err := s.check(req.GetJobId()); err != nil {
		return nil, err
	}
	if err := s.cb.Log(ctx, req.GetJobId(), req.GetEntries()); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &proto.LogResponse{}, nil
}

func (s *callbackServer) LaunchJob(ctx context.Context, req *proto.LaunchJobRequest) (*proto.LaunchJobResponse, error) {
	if err := s.check(req.GetJobId()); err != nil {
		return nil, err
	}
	stats, err := s.cb.LaunchJob(ctx, req.GetJobId(), req.GetRequest())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("launch sub-job: %v", err))
	}
	return &proto.LaunchJobResponse{Stats: stats}, nil
}
