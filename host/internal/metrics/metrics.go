package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-dev/berth/host/internal/events"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/store"
)

// Options configure Metrics.
type Options struct {
	// Namespace and Subsystem prefix every name (Harbor's "harbor" and
	// "jobservice" by default in the config; either may be empty).
	Namespace, Subsystem string
	// Node, PoolID and Workers label the info metric.
	Node, PoolID string
	Workers      int
	// Events is the host's funnel.
	Events *events.Bus
	// Gauges reads the store's gauges of the job names given (nil: none
	// are reported).
	Gauges func(ctx context.Context, names []string) (*store.Gauges, error)
	// Names lists the job names served.
	Names []string
	// Plugins reports the plugins' health (nil: none are reported).
	Plugins func() []pluginhost.PluginHealth
	// ScrapeTimeout bounds reading the gauges (default 5s).
	ScrapeTimeout time.Duration
}

// Metrics is one host's registry.
type Metrics struct {
	reg    *prometheus.Registry
	opts   Options
	remove func()

	tasks    *prometheus.CounterVec
	duration *prometheus.SummaryVec
	events   *prometheus.CounterVec

	mu      sync.Mutex
	started map[string]time.Time // job ID -> start of its current run
}

// maxStarted bounds the runs whose start is remembered (a run whose end
// this host never sees, its host having died, would otherwise stay).
const maxStarted = 100000

// New registers the metrics and starts counting the bus's events.
func New(opts Options) *Metrics {
	if opts.ScrapeTimeout <= 0 {
		opts.ScrapeTimeout = 5 * time.Second
	}
	m := &Metrics{reg: prometheus.NewRegistry(), opts: opts, started: map[string]time.Time{}}
	ns, sub := opts.Namespace, opts.Subsystem
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "info",
		Help: "The job service host: its node, worker pool and workers."}, []string{"node", "pool", "workers"})
	info.WithLabelValues(opts.Node, opts.PoolID, strconv.Itoa(opts.Workers)).Set(1)
	m.tasks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "task_total",
		Help: "Runs of jobs ended on this host, by job name and how they ended."}, []string{"type", "status"})
	m.duration = prometheus.NewSummaryVec(prometheus.SummaryOpts{Namespace: ns, Subsystem: sub, Name: "task_process_time_seconds",
		Help:       "How long the runs of jobs ended on this host took.",
		Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}}, []string{"type", "status"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "job_events_total",
		Help: "Changes this host made to jobs, by job name and reason."}, []string{"type", "reason"})
	m.reg.MustRegister(info, m.tasks, m.duration, m.events, &gauges{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.Events != nil {
		m.remove = opts.Events.Observe(m.observe)
	}
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Timeout: m.opts.ScrapeTimeout + time.Second})
}

// Close stops counting events.
func (m *Metrics) Close() {
	if m.remove != nil {
		m.remove()
	}
}

// observe counts one event of the funnel; it must not block.
func (m *Metrics) observe(ev job.Event) {
	m.events.WithLabelValues(ev.Name, string(ev.Reason)).Inc()
	switch {
	case ev.To == job.Running && ev.From != job.Running || ev.To == job.Running && ev.Revision != ev.FromRevision:
		m.mu.Lock()
		if len(m.started) >= maxStarted {
			// Runs whose end another host saw (their host died) never
			// leave: start afresh rather than stop timing new runs.
			m.started = map[string]time.Time{}
		}
		m.started[ev.JobID] = ev.Time
		m.mu.Unlock()
	case ev.From == job.Running && ev.To != job.Running:
		m.mu.Lock()
		start, ok := m.started[ev.JobID]
		delete(m.started, ev.JobID)
		m.mu.Unlock()
		status := string(ev.To)
		if !ev.To.Final() && ev.To != job.Error {
			// A snooze (Scheduled), or a run of a dead host queued again
			// (Pending): no run ended here.
			return
		}
		m.tasks.WithLabelValues(ev.Name, status).Inc()
		if ok && !ev.Time.Before(start) {
			m.duration.WithLabelValues(ev.Name, status).Observe(ev.Time.Sub(start).Seconds())
		}
	}
}

// gauges reads the store's and the plugins' state at each scrape.
type gauges struct{ m *Metrics }

func (g *gauges) desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(g.m.opts.Namespace, g.m.opts.Subsystem, name), help, labels, nil)
}

func (g *gauges) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(g, ch) }

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	o := g.m.opts
	errs := 0.0
	if o.Gauges != nil {
		ctx, cancel := context.WithTimeout(context.Background(), o.ScrapeTimeout)
		st, err := o.Gauges(ctx, o.Names)
		cancel()
		if err != nil {
			errs++
		} else {
			jobs := g.desc("jobs", "Jobs with stats, across all hosts, by job name and status.", "type", "status")
			for name, by := range st.Jobs {
				for status, n := range by {
					ch <- prometheus.MustNewConstMetric(jobs, prometheus.GaugeValue, float64(n), name, string(status))
				}
			}
			queued := g.desc("queue_size", "Entries waiting in each job name's queue, across all hosts.", "type")
			for name, n := range st.Queued {
				ch <- prometheus.MustNewConstMetric(queued, prometheus.GaugeValue, float64(n), name)
			}
			ch <- prometheus.MustNewConstMetric(g.desc("scheduled_entries", "Entries waiting for their run time."), prometheus.GaugeValue, float64(st.Scheduled))
			ch <- prometheus.MustNewConstMetric(g.desc("retry_entries", "Failed runs waiting for their retry."), prometheus.GaugeValue, float64(st.Retrying))
			ch <- prometheus.MustNewConstMetric(g.desc("hooks_due", "Jobs with a status hook event waiting for delivery."), prometheus.GaugeValue, float64(st.HooksDue))
		}
	}
	ch <- prometheus.MustNewConstMetric(g.desc("scrape_errors", "Gauges that could not be read at this scrape."), prometheus.GaugeValue, errs)
	if o.Plugins != nil {
		up := g.desc("plugin_up", "1 for each plugin file's current state (up, unresponsive, down, failed).", "plugin", "status")
		for _, p := range o.Plugins() {
			ch <- prometheus.MustNewConstMetric(up, prometheus.GaugeValue, 1, p.Name, p.Status)
		}
	}
}
