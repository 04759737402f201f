package proto

import (
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ProtocolVersion is the version of this protocol. The host offers every
// version it speaks through go-plugin's VersionedPlugins and the plugin picks
// the highest one both understand. Bump it when a change is not backward
// compatible, and keep serving the old version on both sides for a while.
const ProtocolVersion = 1

// PluginName is the key of the job plugin in go-plugin's plugin set.
const PluginName = "job"

// Handshake is go-plugin's handshake. The magic cookie keeps a plugin binary
// from being run by hand by mistake: without the cookie in its environment
// it prints a message and exits.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "BERTH_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "0c7c5b3e7a3d4f5bb1c58c1f5e2f4d9a-berth-job-plugin",
}

// MaxMessageSize bounds one gRPC message in either direction. gRPC's own
// default of 4 MiB is too small for large parameters, log batches and
// sub-job stats; both sides raise it to this value.
const MaxMessageSize = 64 << 20

// GRPCServerOptions are the options a plugin's gRPC server needs on top of
// the ones go-plugin passes in.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
	}
}

// GRPCCallOptions are the default call options of a client on either side.
func GRPCCallOptions() []grpc.CallOption {
	return []grpc.CallOption{
		grpc.MaxCallRecvMsgSize(MaxMessageSize),
		grpc.MaxCallSendMsgSize(MaxMessageSize),
	}
}

// ParentCheckInterval is how often a plugin checks that the host that
// started it is still alive; a plugin whose host is gone exits by itself.
const ParentCheckInterval = 250 * time.Millisecond
