package job

// Parameters are a job's parameters, decoded from JSON.
type Parameters map[string]any

// Stats is what the job service knows of a job: the "job" object of
// GET /api/v1/jobs/{id}, of the submission's answer and of hook events.
type Stats struct {
	ID              string     `json:"id"`
	Status          Status     `json:"status"`
	Name            string     `json:"name"`
	Kind            Kind       `json:"kind"`
	Unique          bool       `json:"unique"`
	RefLink         string     `json:"ref_link,omitempty"`
	CronSpec        string     `json:"cron_spec,omitempty"`
	EnqueueTime     int64      `json:"enqueue_time"`
	UpdateTime      int64      `json:"update_time"`
	RunAt           int64      `json:"run_at,omitempty"`
	CheckIn         string     `json:"check_in,omitempty"`
	CheckInAt       int64      `json:"check_in_at,omitempty"`
	DieAt           int64      `json:"die_at,omitempty"`
	WebHookURL      string     `json:"web_hook_url,omitempty"`
	UpstreamJobID   string     `json:"upstream_job_id,omitempty"`
	NumericPolicyID int64      `json:"numeric_policy_id,omitempty"`
	Parameters      Parameters `json:"parameters,omitempty"`
	Revision        int64      `json:"revision,omitempty"`
	Ack             *Ack       `json:"ack,omitempty"`
}

// Ack is the last status event a job's status hook receiver accepted.
type Ack struct {
	Status    Status `json:"status"`
	Revision  int64  `json:"revision"`
	CheckInAt int64  `json:"check_in_at"`
}

// RefLink is the API path of a job.
func RefLink(id string) string { return "/api/v1/jobs/" + id }

// Envelope wraps stats as the API sends them: {"job":{...}}.
type Envelope struct {
	Job *Stats `json:"job"`
}

// StatusChange is the body of a status hook call.
type StatusChange struct {
	JobID    string `json:"job_id"`
	Status   Status `json:"status"`
	CheckIn  string `json:"check_in,omitempty"`
	Metadata *Stats `json:"metadata,omitempty"`
}

// WorkerPool is one host's worker pool, as GET /api/v1/stats shows it.
type WorkerPool struct {
	WorkerPoolID string   `json:"worker_pool_id"`
	StartedAt    int64    `json:"started_at"`
	HeartbeatAt  int64    `json:"heartbeat_at"`
	JobNames     []string `json:"job_names"`
	Concurrency  uint     `json:"concurrency"`
	Status       string   `json:"status"`
}

// Worker pool statuses.
const (
	PoolHealthy = "Healthy"
	PoolDead    = "Dead"
)

// PoolStats is the answer of GET /api/v1/stats.
type PoolStats struct {
	Pools []*WorkerPool `json:"worker_pools"`
}

// PoolConfig is the answer of GET /api/v1/config. The inner keys are Go
// field names, as Harbor sends them.
type PoolConfig struct {
	RedisPoolConfig RedisPoolConfig `json:"redis_pool_config"`
}

// RedisPoolConfig is the Redis part of PoolConfig.
type RedisPoolConfig struct {
	RedisURL          string
	Namespace         string
	IdleTimeoutSecond int64
}
