package job

import "github.com/berth-dev/berth/host/client"

// Kind is how a job is run.
type Kind = client.Kind

// Kinds.
const (
	Generic       = client.Generic
	KindScheduled = client.KindScheduled
	Periodic      = client.Periodic
)

// Kinds lists every kind.
var Kinds = client.Kinds
