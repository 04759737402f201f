package pluginhost

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/berth-dev/berth/sdk/proto"
)

// grpcPlugin is the host side of go-plugin's GRPCPlugin: the client of a
// plugin process's Plugin service.
type grpcPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (grpcPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("pluginhost: the host serves nothing to plugins")
}

// GRPCClient returns the client of the plugin's service; ctx ends when the
// plugin process exits.
func (grpcPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &pluginClient{rpc: proto.NewPluginClient(conn), health: healthpb.NewHealthClient(conn), exited: ctx.Done()}, nil
}

// pluginClient is one running plugin process, as seen from the host.
type pluginClient struct {
	rpc proto.PluginClient
	// health is go-plugin's gRPC health service, which every plugin
	// serves (service "plugin"): the liveness probe asks it.
	health  healthpb.HealthClient
	exited  <-chan struct{}
	session *session
}

// Callbacks is what the host does when a running job reports: the
// messages of its run on the session, in order, from the goroutine that
// runs it.
type Callbacks interface {
	// Checkin records a running job's progress messages, in order.
	Checkin(ctx context.Context, jobID string, messages ...string) error
	// Log appends entries to a running job's log.
	Log(ctx context.Context, jobID string, entries []*proto.LogEntry) error
	// LaunchJob submits a sub-job of parentID from the JSON of a Harbor
	// job request's "job" object, and returns the new job's stats as JSON.
	LaunchJob(ctx context.Context, parentID string, request []byte) ([]byte, error)
}
