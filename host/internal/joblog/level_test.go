package joblog

import "testing"

func TestParseLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Level
		wantErr bool
	}{
		{in: "DEBUG", want: Debug},
		{in: "debug", want: Debug},
		{in: "Info", want: Info},
		{in: "INFO", want: Info},
		{in: "WARNING", want: Warning},
		{in: "warning", want: Warning},
		{in: "WARN", want: Warning},
		{in: "WaRn", want: Warning},
		{in: "ERROR", want: Error},
		{in: "error", want: Error},
		{in: "FATAL", want: Fatal},
		{in: "Fatal", want: Fatal},
		{in: "", wantErr: true},
		{in: "TRACE", wantErr: true},
		{in: " INFO", wantErr: true},
		{in: "WARNINGS", wantErr: true},
		{in: "ERR", wantErr: true},
		{in: "1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLevel(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseLevel(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLevelString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level Level
		want  string
	}{
		{Debug, "DEBUG"},
		{Info, "INFO"},
		{Warning, "WARNING"},
		{Error, "ERROR"},
		{Fatal, "FATAL"},
		{Level(5), "Level(5)"},
		{Level(-1), "Level(-1)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.level.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			if tt.level < Debug || tt.level > Fatal {
				return
			}
			if back, err := ParseLevel(tt.want); err != nil || back != tt.level {
				t.Fatalf("ParseLevel(%q) = %v, %v; want %v", tt.want, back, err, tt.level)
			}
		})
	}
	if !(Debug < Info && Info < Warning && Warning < Error && Error < Fatal) {
		t.Fatal("levels are not ordered by severity")
	}
}
