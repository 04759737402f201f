package job

import "github.com/berth-dev/berth/host/client"

// The wire types of the REST API and the status hooks are the public
// client package's: the host speaks exactly the JSON its clients read.
type (
	// Parameters are a job's parameters, decoded from JSON.
	Parameters = client.Parameters
	// Stats is what the job service knows of a job.
	Stats = client.Stats
	// Ack is the last status event a job's status hook receiver accepted.
	Ack = client.Ack
	// Envelope wraps stats as the API sends them: {"job":{...}}.
	Envelope = client.Envelope
	// StatusChange is the body of a status hook call.
	StatusChange = client.StatusChange
	// WorkerPool is one host's worker pool.
	WorkerPool = client.WorkerPool
	// PoolStats is the answer of GET /api/v1/stats.
	PoolStats = client.PoolStats
	// PoolConfig is the answer of GET /api/v1/config.
	PoolConfig = client.PoolConfig
	// RedisPoolConfig is the Redis part of PoolConfig.
	RedisPoolConfig = client.RedisPoolConfig
)

// Worker pool statuses.
const (
	PoolHealthy = client.PoolHealthy
	PoolDead    = client.PoolDead
)

// RefLink is the API path of a job.
func RefLink(id string) string { return "/api/v1/jobs/" + id }
