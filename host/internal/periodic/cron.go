package periodic

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// parser reads Harbor's 6-field specs: second minute hour day-of-month
// month day-of-week, plus descriptors such as @hourly and @every 30s.
var parser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse checks a cron spec and returns its schedule. A spec that never
// fires (February 30th) is an error too.
func Parse(spec string) (cron.Schedule, error) {
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("cron spec %q: %v; use 6 fields, seconds first, e.g. \"0 */5 * * * *\" for every 5 minutes", spec, err)
	}
	if s.Next(time.Now().UTC()).IsZero() {
		return nil, fmt.Errorf("cron spec %q never fires", spec)
	}
	return s, nil
}
