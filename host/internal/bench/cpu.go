package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// Linux for every architecture Go supports there).
const clockTick = 10 * time.Millisecond

// procCPU returns the user plus system CPU time of a process so far (0
// when unknown, e.g. not on Linux).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	// After "pid (comm)": state is field 3, utime 14, stime 15.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+st) * clockTick
}

// cpuUse is the CPU time the processes of a measurement used.
type cpuUse struct {
	Bench, Plugins, Redis time.Duration
	Wall                  time.Duration
}

// cpuMeter measures the bench process (raw pools and Berth hosts run in
// it), the given plugin processes and redis-server over a window.
type cpuMeter struct {
	redisPID int
	plugins  []int
	start    cpuUse
	began    time.Time
}

func (b *bench) cpuMeter(plugins []int) *cpuMeter {
	m := &cpuMeter{redisPID: b.redisPID, plugins: plugins}
	m.start = m.now()
	m.began = time.Now()
	return m
}

func (m *cpuMeter) now() cpuUse {
	u := cpuUse{Bench: procCPU(os.Getpid()), Redis: procCPU(m.redisPID)}
	for _, p := range m.plugins {
		u.Plugins += procCPU(p)
	}
	return u
}

// stop returns the CPU used since the meter was made.
func (m *cpuMeter) stop() cpuUse {
	n := m.now()
	return cpuUse{Bench: n.Bench - m.start.Bench, Plugins: n.Plugins - m.start.Plugins, Redis: n.Redis - m.start.Redis, Wall: time.Since(m.began)}
}

func (u *cpuUse) add(v cpuUse) {
	u.Bench += v.Bench
	u.Plugins += v.Plugins
	u.Redis += v.Redis
	u.Wall += v.Wall
}

// text says how busy each process was and its CPU time per job.
func (u cpuUse) text(jobs int, withPlugins bool) string {
	per := func(d time.Duration) string {
		return fmt.Sprintf("%.0f us/job, %.2f CPUs", float64(d.Microseconds())/float64(jobs), d.Seconds()/u.Wall.Seconds())
	}
	s := "bench process " + per(u.Bench)
	if withPlugins {
		s += "; plugin " + per(u.Plugins)
	}
	return s + "; redis-server " + per(u.Redis)
}
