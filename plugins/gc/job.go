package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"golang.org/x/time/rate"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/sdk"
)

// Params are Harbor's parameters of a GARBAGE_COLLECTION job, and Berth's
// own that say which storage to collect.
type Params struct {
	DeleteUntagged *bool    `json:"delete_untagged,omitempty" jsonschema:"description=delete manifests no tag points at (default true)"`
	DryRun         bool     `json:"dry_run,omitempty" jsonschema:"description=report what would be deleted and delete nothing"`
	Workers        int      `json:"workers,omitempty" jsonschema:"minimum=1,maximum=10,description=reads and deletes at once (default 1)"`
	TimeWindow     *float64 `json:"time_window,omitempty" jsonschema:"minimum=0,description=hours: what was written more recently is kept (default 2)"`
	RedisURLReg    string   `json:"redis_url_reg,omitempty" jsonschema:"description=Harbor's registry Redis URL (accepted and unused)"`
	StorageRoot    string   `json:"storage_root,omitempty" jsonschema:"description=the registry's filesystem rootdirectory (or give registry_config)"`
	RegistryConfig string   `json:"registry_config,omitempty" jsonschema:"description=the registry's config file whose storage.filesystem.rootdirectory is collected (or give storage_root)"`
	RegistryURL    string   `json:"registry_url,omitempty" jsonschema:"description=the registry's URL: checked before, and every tag validated after"`
}

// Defaults of Harbor's parameters.
const (
	defaultWorkers    = 1
	defaultTimeWindow = 2.0 // hours
	// defaultRootDirectory is the filesystem driver's default.
	defaultRootDirectory = "/var/lib/registry"
)

// Settings are the plugin's section of the host configuration
// (plugin_config.gc).
type Settings struct {
	// Registries are the credentials for the registry_url checks; a
	// registry not listed is reached with the Docker config of the host
	// (DOCKER_CONFIG), or anonymously.
	Registries []Credential `json:"registries,omitempty" jsonschema:"description=credentials for registry_url checks"`
	// DeletesPerSecond bounds the sweep's deletes (0: no bound), to spare
	// a storage backend that limits its request rate.
	DeletesPerSecond float64 `json:"deletes_per_second,omitempty" jsonschema:"minimum=0,description=at most this many deletes a second (0: no limit)"`
	// StorageRoot, RegistryConfig and RegistryURL are used for a job that
	// names no storage (and no registry URL): Harbor's core submits GC
	// with its own parameters only, so a drop-in deployment says here
	// which registry the job service collects.
	StorageRoot    string `json:"storage_root,omitempty" jsonschema:"description=the storage root of a job that names none"`
	RegistryConfig string `json:"registry_config,omitempty" jsonschema:"description=the registry config file of a job that names no storage"`
	RegistryURL    string `json:"registry_url,omitempty" jsonschema:"description=the registry URL of a job that names none"`
}

// Credential is a login to one registry.
type Credential struct {
	URL      string `json:"url" jsonschema:"description=the registry's URL, as registry_url gives it"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// holder keeps the settings the host configured.
type holder struct {
	mu sync.RWMutex
	s  Settings
}

func (h *holder) configure(s Settings) error {
	for i, c := range s.Registries {
		if _, err := parseRegistryURL(c.URL); err != nil {
			return fmt.Errorf("setting \"registries\" %d: %w", i, err)
		}
	}
	if s.StorageRoot != "" && s.RegistryConfig != "" {
		return errors.New(`settings "storage_root" and "registry_config" exclude each other: give one`)
	}
	if s.RegistryURL != "" {
		if _, err := parseRegistryURL(s.RegistryURL); err != nil {
			return fmt.Errorf("setting \"registry_url\" %w", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.s = s
	return nil
}

func (h *holder) load() Settings {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.s
}

// Job is the GARBAGE_COLLECTION job type.
type Job struct{ h *holder }

var (
	_ sdk.Runner[Params]    = Job{}
	_ sdk.Validator[Params] = Job{}
	_ sdk.Retries           = Job{}
	_ sdk.Concurrency       = Job{}
	_ sdk.Versioned         = Job{}
)

// newPlugin returns the job type and the configuration option that main
// serves (and tests serve through sdktest.WithPlugin).
func newPlugin() (sdk.Job, sdk.Option) {
	h := &holder{}
	return sdk.Typed[Params](Job{h: h}), sdk.WithConfig(h.configure)
}

// MaxFails is 1: a collection is not run again by itself.
func (Job) MaxFails() uint { return 1 }

// ShouldRetry is false, as in Harbor.
func (Job) ShouldRetry() bool { return false }

// MaxConcurrency is 1: one collection at a time across every host.
func (Job) MaxConcurrency() uint { return 1 }

// Version of the GARBAGE_COLLECTION job.
func (Job) Version() string { return "1.0.0" }

// Validate refuses what no run could collect: neither or both of
// storage_root and registry_config, a storage that is not a registry's, a
// registry_url that is not an http or https URL.
func (j Job) Validate(p Params) error {
	p = j.withDefaults(p)
	_, err := p.storage(context.Background())
	if err != nil {
		return err
	}
	if p.RegistryURL != "" {
		if _, err := parseRegistryURL(p.RegistryURL); err != nil {
			return fmt.Errorf("parameter \"registry_url\" %w", err)
		}
	}
	return nil
}

// withDefaults gives a job that names no storage the configured one, and
// one without a registry_url the configured URL.
func (j Job) withDefaults(p Params) Params {
	s := j.h.load()
	if p.StorageRoot == "" && p.RegistryConfig == "" {
		p.StorageRoot, p.RegistryConfig = s.StorageRoot, s.RegistryConfig
	}
	if p.RegistryURL == "" {
		p.RegistryURL = s.RegistryURL
	}
	return p
}

// storage resolves the storage root of p and checks that it holds a
// registry's storage.
func (p Params) storage(ctx context.Context) (store, error) {
	var root, shown string
	switch {
	case p.StorageRoot == "" && p.RegistryConfig == "":
		return store{}, errors.New(`one of parameters "storage_root" and "registry_config" is required: the registry's storage root, or its config file (or set one in the plugin's settings, plugin_config.gc, for jobs that name none, as Harbor's core submits them)`)
	case p.StorageRoot != "" && p.RegistryConfig != "":
		return store{}, errors.New(`parameters "storage_root" and "registry_config" exclude each other: give one`)
	case p.StorageRoot != "":
		root, shown = p.StorageRoot, fmt.Sprintf("parameter \"storage_root\" (%s)", p.StorageRoot)
		if !filepath.IsAbs(root) {
			return store{}, fmt.Errorf("%s must be an absolute path", shown)
		}
	default:
		r, err := rootFromConfig(p.RegistryConfig)
		if err != nil {
			return store{}, fmt.Errorf("parameter \"registry_config\" (%s): %w", p.RegistryConfig, err)
		}
		root, shown = r, fmt.Sprintf("parameter \"registry_config\" (%s): its storage root %s", p.RegistryConfig, r)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return store{}, fmt.Errorf("%s: %v", shown, err)
	}
	if !fi.IsDir() {
		return store{}, fmt.Errorf("%s is not a directory", shown)
	}
	s := store{d: filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100})}
	if err := s.looksLikeRegistry(ctx); err != nil {
		return store{}, fmt.Errorf("%s does not look like a registry's storage: %v", shown, err)
	}
	return s, nil
}

// registryConfig is the part of distribution's config file that says
// where the registry stores.
type registryConfig struct {
	Storage map[string]yaml.Node `yaml:"storage"`
}

// storage keys of distribution's config that are not drivers.
var notDrivers = map[string]bool{"delete": true, "maintenance": true, "cache": true, "redirect": true, "tag": true}

// rootFromConfig reads a registry config file and returns its filesystem
// storage's rootdirectory.
func rootFromConfig(file string) (string, error) {
	if !filepath.IsAbs(file) {
		return "", errors.New("must be an absolute path")
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var c registryConfig
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("not a registry config file: %v", err)
	}
	var drivers []string
	for k := range c.Storage {
		if !notDrivers[k] {
			drivers = append(drivers, k)
		}
	}
	switch {
	case len(drivers) == 0:
		return "", errors.New("it configures no storage driver")
	case len(drivers) > 1:
		return "", fmt.Errorf("it configures more than one storage driver (%s)", strings.Join(drivers, ", "))
	case drivers[0] != "filesystem":
		return "", fmt.Errorf("the registry stores with the %q driver; this job collects filesystem storage", drivers[0])
	}
	var fs struct {
		RootDirectory string `yaml:"rootdirectory"`
	}
	node := c.Storage["filesystem"]
	if err := node.Decode(&fs); err != nil {
		return "", fmt.Errorf("storage.filesystem: %v", err)
	}
	if fs.RootDirectory == "" {
		return defaultRootDirectory, nil
	}
	return fs.RootDirectory, nil
}

// parseRegistryURL checks a registry URL: http or https, a host, no more.
func parseRegistryURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("must be an http or https URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("must be an http or https URL, got %q", raw)
	case u.Host == "":
		return nil, fmt.Errorf("must be an http or https URL with a host, got %q", raw)
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil:
		return nil, fmt.Errorf("must be the registry's base URL (scheme and host only), got %q", raw)
	}
	return u, nil
}

// Run collects the storage: scan, mark, sweep (or, on a dry run, report),
// then, with registry_url, validate every tag. It checks in
// {"phase","done","total"} as it goes and ends with the result
// {"freed_space","purged_blobs","purged_manifests"}, checked in, logged
// and set as the job's output.
func (j Job) Run(ctx sdk.Context, p Params) error {
	settings := j.h.load()
	p = j.withDefaults(p)
	log := ctx.Logger()
	s, err := p.storage(ctx)
	if err != nil {
		return sdk.Permanent(err)
	}
	opts := options{deleteUntagged: true, dryRun: p.DryRun, workers: defaultWorkers}
	if p.DeleteUntagged != nil {
		opts.deleteUntagged = *p.DeleteUntagged
	}
	if p.Workers > 0 {
		opts.workers = p.Workers
	}
	window := defaultTimeWindow
	if p.TimeWindow != nil {
		window = *p.TimeWindow
	}
	start := time.Now()
	opts.cutoff = cutoff(start, window)
	log.Info("garbage collection starts", "storage_driver", s.d.Name(), "delete_untagged", opts.deleteUntagged,
		"dry_run", opts.dryRun, "workers", opts.workers, "time_window_hours", window, "kept_after", opts.cutoff.UTC().Format(time.RFC3339))

	var reg *registryCheck
	if p.RegistryURL != "" {
		reg, err = newRegistryCheck(p.RegistryURL, settings.Registries)
		if err != nil {
			return sdk.Permanent(fmt.Errorf("parameter \"registry_url\" %w", err))
		}
		defer reg.close()
		if err := reg.ping(ctx); err != nil {
			return sdk.Permanent(fmt.Errorf("before the collection: %w", err))
		}
		log.Info("the registry answers", "registry_url", p.RegistryURL)
	}

	prog := newProgress(ctx, log)
	c := &collector{s: s, opts: opts, progress: prog.report}
	repos, blobs, err := c.scan(ctx)
	if err != nil {
		return j.failed(ctx, "scan", err)
	}
	marked, err := c.mark(ctx, repos)
	if err != nil {
		return j.failed(ctx, "mark", err)
	}
	pl := c.makePlan(repos, blobs, marked)
	log.Info(fmt.Sprintf("%d repositories, %d blobs: %d digests marked; %d manifests, %d layer links and %d blobs (%d bytes) eligible for deletion; %d blobs kept as newer than the time window",
		len(repos), len(blobs), pl.marked, len(pl.manifests), len(pl.layers), len(pl.blobs), pl.freeable(), pl.keptRecent))

	w := &sweeper{s: s, workers: opts.workers, log: log, progress: prog.report}
	if settings.DeletesPerSecond > 0 {
		w.limiter = rate.NewLimiter(rate.Limit(settings.DeletesPerSecond), 1)
	}
	var res result
	if opts.dryRun {
		res = w.dryRun(pl)
		log.Info("dry run: nothing was deleted")
	} else {
		res, err = w.sweep(ctx, pl)
		if err != nil {
			raw, _ := json.Marshal(res)
			log.Warn("the sweep ended early; what it deleted: "+string(raw), "reason", err.Error())
			_ = ctx.Checkin(string(raw))
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if reg != nil {
		if err := reg.verify(ctx, repos, opts.workers, prog.report); err != nil {
			// What was deleted stays deleted: say it before the failure.
			log.Info("garbage collection result: " + string(raw))
			_ = ctx.Checkin(string(raw))
			return j.failed(ctx, "verify", err)
		}
		log.Info("every tag still resolves and validates", "registry_url", p.RegistryURL)
	}
	log.Info("garbage collection result: "+string(raw), "elapsed", time.Since(start).Round(time.Millisecond).String())
	if err := ctx.SetOutput(res); err != nil {
		return err
	}
	return ctx.Checkin(string(raw))
}

// cutoff is the time before which a file is old enough to collect:
// window hours before now. A window too long for a time.Duration keeps
// everything.
func cutoff(now time.Time, window float64) time.Time {
	const maxHours = float64(math.MaxInt64/int64(time.Hour)) / 2
	if window > maxHours {
		return time.Time{}
	}
	return now.Add(-time.Duration(window * float64(time.Hour)))
}

// failed words an error of a phase, or returns the cause of a stop.
func (Job) failed(ctx sdk.Context, phase string, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("%s: %w", phase, err)
}

// checkinEvery bounds how often progress is checked in within a phase.
const checkinEvery = 200 * time.Millisecond

// progressReporter checks in {"phase","done","total"}: at the start and
// end of each phase, and otherwise at most every checkinEvery.
type progressReporter struct {
	ctx sdk.Context
	log *slog.Logger

	mu    sync.Mutex
	phase string
	last  time.Time
}

func newProgress(ctx sdk.Context, log *slog.Logger) *progressReporter {
	return &progressReporter{ctx: ctx, log: log}
}

func (p *progressReporter) report(phase string, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if phase == p.phase && done != total && now.Sub(p.last) < checkinEvery {
		return
	}
	if phase != p.phase {
		p.log.Info("phase " + phase)
	}
	p.phase, p.last = phase, now
	raw, _ := json.Marshal(struct {
		Phase string `json:"phase"`
		Done  int    `json:"done"`
		Total int    `json:"total"`
	}{phase, done, total})
	_ = p.ctx.Checkin(string(raw))
}
