package proto

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ProtocolVersion is the version of this protocol. The host offers the
// versions it speaks through go-plugin's VersionedPlugins and the plugin
// picks the highest one both understand. Bump it when a change is not
// backward compatible.
const ProtocolVersion = 2

// PluginName is the key of the job plugin in go-plugin's plugin set.
const PluginName = "job"

// Handshake is go-plugin's handshake. The magic cookie keeps a plugin binary
// from being run by hand by mistake: without the cookie in its environment
// it prints a message and exits. ProtocolVersion here is only go-plugin's
// fallback; VersionedPlugins decides.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "BERTH_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "0c7c5b3e7a3d4f5bb1c58c1f5e2f4d9a-berth-job-plugin",
}

// MaxMessageSize bounds one gRPC message in either direction. gRPC's own
// default of 4 MiB is too small for large parameters, outputs, log batches
// and sub-job stats; both sides raise it to this value.
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

// FrozenHostAfter is how long a plugin's host may be stopped (SIGSTOP)
// before the plugin gives up its runs: well under the shortest lease
// (reaper.dead_after, at least 6 s, given up by the host at five sixths),
// so that a run ends before another host takes its job.
const FrozenHostAfter = 3 * time.Second

// ReattachEnv names the environment variable through which a host attaches
// to plugins started by hand (under a debugger) instead of launching them:
// a JSON object mapping a plugin's file name to the go-plugin
// ReattachConfig that the plugin printed when started with DebugEnv set.
const ReattachEnv = "BERTH_PLUGIN_REATTACH"

// DebugEnv, set to 1 in a plugin's environment, makes it serve without a
// host: it prints the line to give the host in ReattachEnv and waits.
const DebugEnv = "BERTH_PLUGIN_DEBUG"

// Reattach is the JSON form of a go-plugin ReattachConfig, as a plugin in
// debug mode prints it and a host reads it from ReattachEnv.
type Reattach struct {
	Protocol        string `json:"protocol"`
	ProtocolVersion int    `json:"protocol_version"`
	Network         string `json:"network"`
	Address         string `json:"address"`
	Pid             int    `json:"pid"`
}

// ReattachOf gives the JSON form of c.
func ReattachOf(c *plugin.ReattachConfig) Reattach {
	return Reattach{Protocol: string(c.Protocol), ProtocolVersion: c.ProtocolVersion,
		Network: c.Addr.Network(), Address: c.Addr.String(), Pid: c.Pid}
}

// Config is the go-plugin ReattachConfig of r. The plugin is in test
// (debug) mode: a host that goes away leaves it running.
func (r Reattach) Config() (*plugin.ReattachConfig, error) {
	var addr net.Addr
	var err error
	switch r.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", r.Address)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", r.Address)
	default:
		return nil, fmt.Errorf("reattach: network %q is neither unix nor tcp", r.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("reattach: address %q: %w", r.Address, err)
	}
	if r.Protocol != string(plugin.ProtocolGRPC) {
		return nil, fmt.Errorf("reattach: protocol %q; Berth plugins speak grpc", r.Protocol)
	}
	return &plugin.ReattachConfig{Protocol: plugin.ProtocolGRPC, ProtocolVersion: r.ProtocolVersion, Addr: addr, Pid: r.Pid, Test: true}, nil
}
