package periodic

import (
	"testing"
	"time"
)

// FuzzParse: no spec panics Parse, and a schedule it accepts has a next
// time after any moment (never the moment itself or before).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0 */5 * * * *", "*/1 * * * * *", "0 0 0 1 1 *", "0 0 12 * * MON-FRI",
		"@every 5s", "TZ=UTC 0 * * * * *", "* * * * *", "", "61 * * * * *", "0 0 0 30 2 *"} {
		f.Add(s)
	}
	start := time.Date(2026, 12, 1, 23, 59, 59, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		sched, err := Parse(spec)
		if err != nil {
			return
		}
		if next := sched.Next(start); !next.IsZero() && !next.After(start) {
			t.Fatalf("Parse(%q).Next(%s) = %s, not after it", spec, start, next)
		}
	})
}
