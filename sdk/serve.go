package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/sdk/proto"
)

// Serve serves jobs to the Berth host that started this program, and exits
// the program when the host lets it go or goes away. It never returns.
//
// Run by hand (without the host), the program prints that it is a Berth
// plugin and exits with status 1.
func Serve(jobs Jobs) {
	if err := checkJobs(jobs); err != nil {
		fmt.Fprintf(os.Stderr, "berth plugin %s: %v\n", os.Args[0], err)
		os.Exit(1)
	}
	srv := newServer(jobs)
	go watchParent(context.Background(), os.Getppid(), proto.ParentCheckInterval, func() {
		// The host died without stopping us (SIGKILL, crash): nobody will
		// read our results any more, and an orphan would hold resources.
		fmt.Fprintf(os.Stderr, "berth plugin %s: host process is gone, exiting\n", os.Args[0])
		os.Exit(2)
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: proto.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			proto.ProtocolVersion: {proto.PluginName: &grpcPlugin{srv: srv}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, proto.GRPCServerOptions()...)...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "plugin",
			Level:      hclog.Info,
			Output:     os.Stderr,
			JSONFormat: true,
		}),
	})
	os.Exit(0)
}

func checkJobs(jobs Jobs) error {
	if len(jobs) == 0 {
		return errors.New("sdk.Serve needs at least one job: sdk.Serve(sdk.Jobs{\"NAME\": job})")
	}
	names := make([]string, 0, len(jobs))
	for name := range jobs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" {
			return errors.New("sdk.Serve: a job has an empty name")
		}
		if jobs[name] == nil {
			return fmt.Errorf("sdk.Serve: job %q is nil", name)
		}
	}
	return nil
}

// grpcPlugin is the plugin side of go-plugin's GRPCPlugin.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

func (p *grpcPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	p.srv.broker = broker
	proto.RegisterJobServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the plugin side has no client")
}
