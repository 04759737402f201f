package periodic_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/periodic"
)

func TestParseAcceptsSixFieldsSecondsFirst(t *testing.T) {
	t.Parallel()
	// A Tuesday, 22:13:20 UTC.
	from := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	tests := []struct {
		name, spec string
		next       time.Time
	}{
		{"EverySecond", "* * * * * *", from.Add(time.Second)},
		{"SecondsFirst", "30 0 12 * * *", time.Date(2023, 11, 15, 12, 0, 30, 0, time.UTC)},
		{"EveryFiveMinutes", "0 */5 * * * *", time.Date(2023, 11, 14, 22, 15, 0, 0, time.UTC)},
		{"MonthAndDayOfMonth", "0 0 0 1 1 *", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"DayOfWeekByName", "0 0 9 * * MON-FRI", time.Date(2023, 11, 15, 9, 0, 0, 0, time.UTC)},
		{"LeapDay", "0 0 0 29 2 *", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := periodic.Parse(tt.spec)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.spec, err)
			}
			if got := s.Next(from); !got.Equal(tt.next) {
				t.Fatalf("Parse(%q).Next(%s) = %s, want %s (in UTC)", tt.spec, from, got, tt.next)
			}
		})
	}
}

func TestParseRefusesBadSpecs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, spec string
		// why is in the message, beside the spec.
		why string
	}{
		{"Empty", "", "empty"},
		{"FiveFields", "*/5 * * * *", "6 fields"},
		{"SevenFields", "* * * * * * *", "6 fields"},
		{"SecondOutOfRange", "60 * * * * *", "above maximum"},
		{"MinuteOutOfRange", "0 60 * * * *", "above maximum"},
		{"HourOutOfRange", "0 0 24 * * *", "above maximum"},
		{"DayOfMonthZero", "0 0 0 0 * *", "below minimum"},
		{"DayOfMonthOutOfRange", "0 0 0 32 * *", "above maximum"},
		{"MonthOutOfRange", "0 0 0 1 13 *", "above maximum"},
		{"DayOfWeekOutOfRange", "0 0 0 * * 7", "above maximum"},
		{"ZeroStep", "*/0 * * * * *", "step"},
		{"NotANumber", "x * * * * *", "x"},
		{"UnknownDescriptor", "@reboot", "descriptors such as @hourly or @every are not accepted"},
		{"Descriptor", "@hourly", "use 6 fields, seconds first"},
		{"Every", "@every 30s", "Harbor refuses them too"},
		{"DescriptorAfterSpaces", "  @daily", "descriptors"},
		{"February30", "0 0 0 30 2 *", "never fires"},
		{"April31", "0 0 0 31 4 *", "never fires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := periodic.Parse(tt.spec)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tt.spec, s)
			}
			if s != nil {
				t.Fatalf("Parse(%q) returned a schedule with its error", tt.spec)
			}
			msg := err.Error()
			if quoted := fmt.Sprintf("%q", tt.spec); !strings.Contains(msg, quoted) {
				t.Fatalf("Parse(%q) error %q does not name the spec %s", tt.spec, msg, quoted)
			}
			if !strings.Contains(msg, tt.why) {
				t.Fatalf("Parse(%q) error %q does not say %q", tt.spec, msg, tt.why)
			}
		})
	}
}

// TestParseRefusesATimeZoneWithoutASpec: robfig/cron v3.0.1 slices
// spec[eq+1:strings.Index(spec, " ")] for a "TZ=" or "CRON_TZ=" prefix
// without a space after it, and panics; Parse passes it through, so a
// submitted cron_spec "TZ=UTC" panics the API handler and such a stored
// spec panics the scheduler's goroutine (the host dies).
func TestParseRefusesATimeZoneWithoutASpec(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, spec string }{{"TZ", "TZ=UTC"}, {"CronTZ", "CRON_TZ=Europe/Berlin"}} {
		spec := tt.spec
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("Parse(%q) panicked: %v", spec, r)
				}
			}()
			if _, err := periodic.Parse(spec); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", spec)) {
				t.Fatalf("Parse(%q) error = %v, want one naming the spec", spec, err)
			}
		})
	}
}
