package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDurationParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string // a YAML scalar, as written in a file
		want time.Duration
	}{
		{"Seconds", "30s", 30 * time.Second},
		{"Quoted", `"30s"`, 30 * time.Second},
		{"Composite", "1h30m", 90 * time.Minute},
		{"Milliseconds", "250ms", 250 * time.Millisecond},
		{"BareInteger", "90", 90 * time.Second},
		{"QuotedInteger", `"90"`, 90 * time.Second},
		{"Zero", "0", 0},
		{"ZeroWithUnit", "0s", 0},
		{"Negative", "-5", -5 * time.Second},
		{"NegativeWithUnit", "-1m", -time.Minute},
		{"Days", "168h", 7 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got struct {
				D Duration `yaml:"d"`
			}
			if err := yaml.Unmarshal([]byte("d: "+tc.in), &got); err != nil {
				t.Fatalf("yaml %q: %v", tc.in, err)
			}
			if got.D.Std() != tc.want {
				t.Errorf("yaml %q = %v, want %v", tc.in, got.D.Std(), tc.want)
			}
			text := strings.Trim(tc.in, `"`)
			d, err := parseDuration(text) // what env values go through
			if err != nil || d.Std() != tc.want {
				t.Errorf("parseDuration(%q) = %v, %v; want %v", text, d.Std(), err, tc.want)
			}
			var fromText Duration
			if err := fromText.UnmarshalText([]byte(text)); err != nil || fromText.Std() != tc.want {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", text, fromText.Std(), err, tc.want)
			}
		})
	}
}

func TestDurationParseRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
	}{
		{"Word", "soon"},
		{"Float", "1.5"},
		{"NoNumber", "s"},
		{"Empty", `""`},
		{"UnknownUnit", "3 days"},
		{"Overflow", "9999999999999"},
		{"List", "[1s]"},
		{"Mapping", "{s: 1}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got struct {
				D Duration `yaml:"d"`
			}
			err := yaml.Unmarshal([]byte("d: "+tc.in), &got)
			if err == nil {
				t.Fatalf("yaml %q = %v, want an error", tc.in, got.D)
			}
			if !strings.Contains(err.Error(), durationWant) {
				t.Errorf("yaml %q: error %q does not say what a duration looks like", tc.in, err)
			}
		})
	}
}

func TestDurationFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{30 * time.Second, "30s"},
		{time.Minute, "1m"},
		{10 * time.Minute, "10m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + 30*time.Second, "1h0m30s"},
		{168 * time.Hour, "168h"},
		{1500 * time.Millisecond, "1.5s"},
		{-time.Hour, "-1h"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			d := Duration(tc.in)
			if got := d.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if back, err := time.ParseDuration(d.String()); err != nil || back != tc.in {
				t.Errorf("time.ParseDuration(%q) = %v, %v; want %v", d.String(), back, err, tc.in)
			}
			y, err := yaml.Marshal(struct {
				D Duration `yaml:"d"`
			}{d})
			if err != nil || string(y) != "d: "+tc.want+"\n" {
				t.Errorf("yaml.Marshal = %q, %v; want %q", y, err, "d: "+tc.want+"\n")
			}
			j, err := json.Marshal(d)
			if err != nil || string(j) != `"`+tc.want+`"` {
				t.Errorf("json.Marshal = %s, %v; want %q", j, err, tc.want)
			}
		})
	}
}

func TestDurationStd(t *testing.T) {
	t.Parallel()
	if got := Duration(42 * time.Millisecond).Std(); got != 42*time.Millisecond {
		t.Errorf("Std() = %v, want 42ms", got)
	}
}
