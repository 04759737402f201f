package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/sdk/proto"
)

// grpcPlugin is the plugin side of go-plugin's GRPCPlugin.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterPluginServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the plugin side has no client")
}

// ServeOptions say how to serve.
type ServeOptions struct {
	Config Config
	// Test serves in go-plugin's test mode, in-process, until its
	// Context ends (sdktest); nil serves a host that started this
	// process, or a debugger when DebugEnv is set.
	Test *plugin.ServeTestConfig
	// Logger is go-plugin's server log (default: hclog JSON on stderr,
	// which the host reads).
	Logger hclog.Logger
}

// Serve serves jobs until the host lets the plugin go.
func Serve(jobs map[string]Job, o ServeOptions) error {
	names, err := checkJobs(jobs)
	if err != nil {
		return err
	}
	srv := newServer(jobs, names, o.Config)
	if o.Logger == nil {
		o.Logger = hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Info, Output: os.Stderr, JSONFormat: true})
	}
	cfg := &plugin.ServeConfig{
		HandshakeConfig: proto.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			proto.ProtocolVersion: {proto.PluginName: &grpcPlugin{srv: srv}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, proto.GRPCServerOptions()...)...)
		},
		Logger: o.Logger,
		Test:   o.Test,
	}
	switch {
	case o.Test != nil:
	case os.Getenv(proto.DebugEnv) == "1":
		return serveDebug(cfg)
	default:
		go watchParent(context.Background(), os.Getppid(), proto.ParentCheckInterval, proto.FrozenHostAfter, func() {
			// The host died without stopping us (SIGKILL, crash): nobody
			// will read our results any more, and an orphan would hold
			// resources.
			fmt.Fprintf(os.Stderr, "berth plugin %s: host process is gone, exiting\n", os.Args[0])
			os.Exit(2)
		}, func() {
			// A frozen host renews no lease: another host is about to run
			// these jobs. A run must not outlive its lease.
			fmt.Fprintf(os.Stderr, "berth plugin %s: host process is frozen; giving up its runs\n", os.Args[0])
			srv.abandonAll(ErrHostFrozen)
		})
	}
	plugin.Serve(cfg)
	return nil
}

// serveDebug serves without a host, for a debugger: it prints the line that
// attaches a host to this process and serves until SIGINT or SIGTERM.
func serveDebug(cfg *plugin.ServeConfig) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	cfg.Test = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}
	go plugin.Serve(cfg)
	select {
	case rc := <-reattach:
		line, err := json.Marshal(map[string]proto.Reattach{filepath.Base(os.Args[0]): proto.ReattachOf(rc)})
		if err != nil {
			return err
		}
		fmt.Printf("berth plugin %s serves in debug mode; start the host with:\n\n\t%s='%s'\n\n", os.Args[0], proto.ReattachEnv, line)
	case <-ctx.Done():
		return nil
	}
	<-closed
	return nil
}
