package servicelog

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/config"
)

// New returns the service logger of loggers, writing STD_OUTPUT entries to
// stdout, and a function that closes its files.
func New(loggers []config.Logger, stdout io.Writer) (hclog.Logger, func(), error) {
	var sinks []hclog.SinkAdapter
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	lowest := hclog.Off
	for _, l := range loggers {
		level, err := Level(l.Level)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("loggers %s: %w", l.Name, err)
		}
		var w io.Writer
		switch l.Name {
		case config.LoggerStdOutput:
			w = stdout
		case config.LoggerFile:
			if err := os.MkdirAll(l.BaseDir(), 0o755); err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("loggers FILE: %w", err)
			}
			f, err := os.OpenFile(filepath.Join(l.BaseDir(), "berth.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("loggers FILE: %w", err)
			}
			files = append(files, f)
			w = f
		default:
			closeAll()
			return nil, nil, fmt.Errorf("loggers: backend %q cannot hold the service log; use STD_OUTPUT or FILE", l.Name)
		}
		sinks = append(sinks, hclog.NewSinkAdapter(&hclog.LoggerOptions{Output: w, Level: level, TimeFormat: "2006-01-02T15:04:05.000Z07:00"}))
		if level < lowest {
			lowest = level
		}
	}
	log := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "berth", Output: io.Discard, Level: lowest})
	for _, s := range sinks {
		log.RegisterSink(s)
	}
	return log, closeAll, nil
}

// Level maps Harbor's level names onto hclog's.
func Level(name string) (hclog.Level, error) {
	switch strings.ToUpper(name) {
	case "DEBUG":
		return hclog.Debug, nil
	case "INFO", "":
		return hclog.Info, nil
	case "WARNING", "WARN":
		return hclog.Warn, nil
	case "ERROR", "FATAL":
		return hclog.Error, nil
	}
	return hclog.NoLevel, fmt.Errorf("level %q: use DEBUG, INFO, WARNING, ERROR or FATAL", name)
}
