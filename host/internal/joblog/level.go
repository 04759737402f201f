package joblog

import (
	"fmt"
	"strconv"
	"strings"
)

// Level is the severity of a job log entry. Higher is more severe; a backend
// drops entries below its own level.
type Level int

// The levels, in Harbor's order.
const (
	Debug Level = iota
	Info
	Warning
	Error
	Fatal
)

var levelNames = [...]string{
	Debug:   "DEBUG",
	Info:    "INFO",
	Warning: "WARNING",
	Error:   "ERROR",
	Fatal:   "FATAL",
}

// String returns the upper-case name of l (DEBUG, INFO, WARNING, ERROR,
// FATAL), or Level(n) for a value outside that range.
func (l Level) String() string {
	if l >= Debug && l <= Fatal {
		return levelNames[l]
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

// ParseLevel reads a level name as written in the config: DEBUG, INFO,
// WARNING (or WARN), ERROR or FATAL, in any letter case.
func ParseLevel(s string) (Level, error) {
	u := strings.ToUpper(s)
	if u == "WARN" {
		return Warning, nil
	}
	for l, name := range levelNames {
		if u == name {
			return Level(l), nil
		}
	}
	return 0, fmt.Errorf("joblog: unknown log level %q: want DEBUG, INFO, WARNING, ERROR or FATAL", s)
}
