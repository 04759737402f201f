package servicelog_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/servicelog"
)

func TestLevelsAndBackends(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var stdout bytes.Buffer
	log, closeLog, err := servicelog.New([]config.Logger{
		{Name: config.LoggerStdOutput, Level: "WARNING"},
		{Name: config.LoggerFile, Level: "DEBUG", Settings: map[string]any{config.SettingBaseDir: dir}},
	}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	log.Named("runner").Debug("a debug line")
	log.Info("an info line")
	log.Warn("a warning", "job_id", "abc")
	closeLog()
	out := stdout.String()
	if strings.Contains(out, "a debug line") || strings.Contains(out, "an info line") || !strings.Contains(out, "[WARN]  berth: a warning: job_id=abc") {
		t.Fatalf("STD_OUTPUT at WARNING wrote:\n%s", out)
	}
	file, err := os.ReadFile(filepath.Join(dir, "berth.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[DEBUG] berth.runner: a debug line", "[INFO]  berth: an info line", "[WARN]  berth: a warning"} {
		if !strings.Contains(string(file), want) {
			t.Errorf("FILE at DEBUG lacks %q:\n%s", want, file)
		}
	}
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		l    config.Logger
		want string
	}{
		{"Level", config.Logger{Name: config.LoggerStdOutput, Level: "LOUD"}, `level "LOUD"`},
		{"Backend", config.Logger{Name: config.LoggerRedis, Level: "INFO"}, "cannot hold the service log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := servicelog.New([]config.Logger{tc.l}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
