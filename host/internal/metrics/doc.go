// Package metrics serves a host's Prometheus metrics (config key metric).
//
// Harbor's job service metrics, with its names and labels, so that
// Harbor's dashboards and alerts keep working:
//
//	<ns>_<sub>_info{node,pool,workers}                 1 per host
//	<ns>_<sub>_task_total{type,status}                 runs ended on this host
//	<ns>_<sub>_task_process_time_seconds{type,status}  their durations (summary)
//
// where <ns>_<sub> is metric.namespace and metric.subsystem (Harbor's
// harbor_jobservice by default), type is the job name and status the
// run's end: Success, Error (also a failed run that is retried) or
// Stopped.
//
// Berth's own, under the same prefix:
//
//	..._job_events_total{type,reason}   every change this host made (the funnel's events)
//	..._jobs{type,status}               jobs with stats, across all hosts (read at scrape)
//	..._queue_size{type}                entries waiting in each job queue
//	..._scheduled_entries, ..._retry_entries, ..._hooks_due
//	..._plugin_up{plugin,status}        1 for each plugin file's current state
//	..._scrape_errors                   1 when this scrape could not read the gauges
//
// plus the Go runtime and process collectors. Counters come from the
// events bus (package events), the one place every change passes through;
// gauges are read from Redis when scraped, bounded by a timeout, so that
// every host reports the whole cluster's backlog.
//
// Nothing here is global: each Metrics has its own registry.
package metrics
