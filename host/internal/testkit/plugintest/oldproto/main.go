package main

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/sdk/proto"
)

type v1 struct{ plugin.NetRPCUnsupportedPlugin }

func (v1) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (v1) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	hs := proto.Handshake
	hs.ProtocolVersion = 1
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{1: {proto.PluginName: v1{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
