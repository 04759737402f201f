package job

// Kind is how a job is run.
type Kind string

// Kinds.
const (
	// Generic jobs run once, as soon as a worker is free.
	Generic Kind = "Generic"
	// KindScheduled jobs run once, schedule_delay seconds after submission;
	// periodic executions are Scheduled too.
	KindScheduled Kind = "Scheduled"
	// Periodic jobs are policies that start an execution at every cron time.
	Periodic Kind = "Periodic"
)

// Kinds lists every kind.
var Kinds = []Kind{Generic, KindScheduled, Periodic}

// Valid tells whether k is a known kind.
func (k Kind) Valid() bool { return k == Generic || k == KindScheduled || k == Periodic }
