package sdk

// Job is one job type. The host calls it concurrently from many runs.
type Job interface {
	// MaxFails is how many failed runs the job is allowed before the host
	// gives up on it; 0 means the host default, 4.
	MaxFails() uint
	// ShouldRetry tells whether a failed run is retried (while the number
	// of failures is below MaxFails). false means a job runs at most once.
	ShouldRetry() bool
	// Validate checks the parameters of a submitted job. A non-nil error
	// rejects the submission with HTTP 400 and the error's text, so say
	// which parameter is wrong and why.
	Validate(params Parameters) error
	// Run does the work. Return nil on success. When ctx is done, return
	// promptly (any error will do: the host already knows why it ended).
	Run(ctx Context, params Parameters) error
}

// Parameters are a job's parameters, decoded from the JSON of the
// submission: numbers are float64, objects map[string]any, arrays []any.
type Parameters map[string]any

// Jobs maps job names to their implementations. A name is what clients put
// in a submission's "name"; two plugins must not serve the same name.
type Jobs map[string]Job

// A Job may also implement these optional interfaces:
//
//	MaxConcurrency() uint // most runs at once across all hosts; 0 = no limit
//	Version() string      // shown in the host's log and stats
type (
	maxConcurrencyer interface{ MaxConcurrency() uint }
	versioner        interface{ Version() string }
)
