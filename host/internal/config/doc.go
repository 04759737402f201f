// Package config owns Berth's configuration: the YAML file format (Harbor's
// job service keys plus Berth's own), the environment overrides (Harbor's
// variable names plus BERTH_*), every default value, and the validation of
// the whole. It holds no global state: Load returns a *Config that main
// hands to whoever needs it.
//
// Load builds a Config in this order:
//
//  1. Default: every default value.
//  2. The YAML file, laid over the defaults. An absent key keeps its
//     default; a key written as 0 stays 0 and is judged in step 6. Unknown
//     keys and values of the wrong type are errors that name the full key
//     (worker_pool.redis_pool.namespace) and its line. Harbor's keys are
//     known keys (metric.*, reaper.max_update_hours, max_dangling_hours);
//     keys Harbor never had stay errors.
//  3. Harbor's file mapped onto Berth (harbor.go): a DB job logger runs as
//     REDIS; reaper.max_update_hours sets reaper.max_job_duration (unless
//     MAX_JOB_DURATION_SECONDS does, step 4); the Redis URL's
//     idle_timeout_seconds wins over idle_timeout_second. Each change or
//     setting left unused is a warning (LoadWarnings, Warnings).
//  4. The environment: JOB_SERVICE_PROTOCOL, JOB_SERVICE_PORT,
//     JOB_SERVICE_HTTPS_CERT, JOB_SERVICE_HTTPS_KEY, JOB_SERVICE_POOL_WORKERS,
//     JOB_SERVICE_POOL_BACKEND, JOB_SERVICE_POOL_REDIS_URL,
//     JOB_SERVICE_POOL_REDIS_NAMESPACE,
//     JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND (or its older Berth
//     name JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT), CORE_SECRET, CORE_URL,
//     MAX_JOB_DURATION_SECONDS, LOG_LEVEL, METRIC_NAMESPACE, METRIC_SUBSYSTEM,
//     BERTH_BIND_ADDRESS, BERTH_PLUGINS_DIR, BERTH_SHUTDOWN_GRACE,
//     BERTH_PLUGIN_REATTACH and BERTH_LOG_LEVEL (the level of every entry of
//     loggers; it wins over LOG_LEVEL). A variable set to the empty string
//     counts as unset, except JOB_SERVICE_POOL_REDIS_URL (set and empty, it
//     selects the embedded in-memory backend even if the file names a
//     Redis), BERTH_BIND_ADDRESS (every interface) and METRIC_* (no prefix).
//     A value that cannot be parsed is an error naming the variable and the
//     value. The other variables Harbor gives its job service (proxies,
//     JOBSERVICE_WEBHOOK_*, registry and trace settings) are not read here;
//     plugins inherit them.
//  5. The defaults inside lists: a logger's level (INFO), FILE's base_dir,
//     REDIS's max_bytes and the sweeper's work_dir; logger names and levels
//     are upper-cased.
//  6. Validate, which reports every problem at once, each naming its key
//     and, when the value came from the environment, the variable.
//
// The secret (CORE_SECRET) comes from the environment only. An empty secret
// and an empty Redis URL (the embedded backend, whose jobs do not survive a
// restart) are valid; Warnings lists the first, with step 3's warnings and
// Harbor settings read but unused (metric.enabled, max_dangling_hours), so
// that the host can say so loudly at start.
//
// testdata/full.yml shows every key with a comment.
//
// It only reads and checks; it opens no connection and starts nothing
// (package redisx parses the Redis URL it validates).
package config
