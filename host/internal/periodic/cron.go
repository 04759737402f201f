package periodic

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser reads Harbor's 6-field specs: second minute hour day-of-month
// month day-of-week. Descriptors (@hourly, @every 30s) are refused, as
// Harbor refuses them: a policy must fire on the same seconds on every
// host and in Harbor, and "@every" counts from when it was parsed.
var parser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Parse checks a cron spec and returns its schedule. A spec that never
// fires (February 30th) is an error too.
func Parse(spec string) (cron.Schedule, error) {
	// robfig/cron reads a "TZ=" or "CRON_TZ=" prefix as a time zone (and
	// panics on one with nothing after it); Berth's specs are in UTC.
	if f := strings.Fields(spec); len(f) > 0 && (strings.HasPrefix(f[0], "TZ=") || strings.HasPrefix(f[0], "CRON_TZ=")) {
		return nil, fmt.Errorf("cron spec %q names a time zone; specs are in UTC: drop %q", spec, f[0])
	}
	if strings.HasPrefix(strings.TrimSpace(spec), "@") {
		return nil, fmt.Errorf("cron spec %q: descriptors such as @hourly or @every are not accepted (Harbor refuses them too); use 6 fields, seconds first, e.g. \"0 0 * * * *\" for every hour", spec)
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("cron spec %q: %v; use 6 fields, seconds first, e.g. \"0 */5 * * * *\" for every 5 minutes", spec, err)
	}
	if s.Next(time.Now().UTC()).IsZero() {
		return nil, fmt.Errorf("cron spec %q never fires", spec)
	}
	return s, nil
}
