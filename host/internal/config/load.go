package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load builds the configuration: it starts from Default, lays over it the
// YAML file at path (path "" means no file), maps what Harbor's own file
// holds onto Berth's settings (see harbor.go), lays over that the
// environment as seen through lookup (os.LookupEnv in main; nil means no
// environment), fills the defaults that live inside lists (a logger's level
// and settings), and validates. Every problem found is reported at once,
// each naming its key (and the env variable, when the value came from one).
// What the mapping changed or left unused is in LoadWarnings.
//
// Because the file is laid over the defaults, a key that is absent keeps its
// default while a key given as 0 stays 0 and is judged by Validate.
func Load(path string, lookup func(string) (string, bool)) (*Config, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	c := Default()
	source := "(defaults + env)"
	var doc *yaml.Node
	if path != "" {
		source = path
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if doc, err = decodeYAML(data, c); err != nil {
			return nil, &loadError{source: source, err: err}
		}
	}
	h := harborFile{doc: doc}
	h.jobLoggers(c)
	fromEnv, envErr := applyEnv(c, lookup)
	reaperErr := h.reaper(c, fromEnv)
	applyDefaults(c)
	h.idleTimeout(c, fromEnv)
	c.LoadWarnings = h.warnings
	// The host resolves the secrets again at start; here a missing one is
	// a startup error that names its key.
	_, secErr := c.PluginSections(lookup)
	err := errors.Join(envErr, reaperErr, blameEnv(c.Validate(), fromEnv), secErr)
	if err != nil {
		return nil, &loadError{source: source, err: err}
	}
	return c, nil
}

// loadError lists every problem of one load, one per line.
type loadError struct {
	source string
	err    error
}

func (e *loadError) Error() string {
	errs := problems(e.err)
	if len(errs) == 1 {
		return fmt.Sprintf("config %s: %s", e.source, errs[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problems:", e.source, len(errs))
	for _, err := range errs {
		b.WriteString("\n\t" + strings.ReplaceAll(err.Error(), "\n", "\n\t"))
	}
	return b.String()
}

func (e *loadError) Unwrap() error { return e.err }

// decodeYAML lays the YAML document in data over c and returns the
// document's root (nil for a file without one), so that Load can tell which
// keys the file gave. Before decoding, it walks the document alongside c's
// type so that an unknown key or a value of the wrong type is reported with
// its full key path rather than a bare line number. The decode itself is
// yaml.v3's with KnownFields(true).
func decodeYAML(data []byte, c *Config) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, nil // empty file, or comments only
	case err != nil:
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("line %d: a second YAML document starts here; keep the configuration in one document", next.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if errs := checkNode(root, reflect.TypeFor[Config](), ""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(c); err != nil {
		return nil, err // duplicate keys, and problems inside aliases, which checkNode leaves to yaml.v3
	}
	return root, nil
}

var durationType = reflect.TypeFor[Duration]()

// checkNode reports, by key path, the keys of n that type t does not know
// and the values of n that do not fit t. Aliases and merge keys are left to
// yaml.v3, which reports their problems by line.
func checkNode(n *yaml.Node, t reflect.Type, key string) []error {
	if n.Kind == yaml.AliasNode || isNull(n) {
		return nil // null keeps a default value, or empties a list or map
	}
	if t == durationType {
		var d Duration
		if err := d.UnmarshalYAML(n); err != nil {
			return []error{&fieldError{key: key, line: n.Line, msg: err.Error()}}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkNode(n, t.Elem(), key)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return []error{typeError(key, n, "a mapping of keys")}
		}
		fields := yamlFields(t)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				errs = append(errs, unknownKey(joinKey(key, k.Value), k.Line, fields))
				continue
			}
			errs = append(errs, checkNode(v, ft, joinKey(key, k.Value))...)
		}
		return errs
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return []error{typeError(key, n, "a list")}
		}
		var errs []error
		for i, item := range n.Content {
			errs = append(errs, checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", key, i))...)
		}
		return errs
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return []error{typeError(key, n, "a mapping")}
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue
			}
			if k.Kind != yaml.ScalarNode {
				errs = append(errs, &fieldError{key: key, line: k.Line, msg: "keys must be plain strings"})
				continue
			}
			errs = append(errs, checkNode(v, t.Elem(), joinKey(key, k.Value))...)
		}
		return errs
	case reflect.Interface:
		return nil // settings values may be anything; Validate judges known ones
	case reflect.Int:
		// yaml.v3 would truncate 1.5 to 1 without a word: refuse floats.
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(new(int)) != nil {
			return []error{typeError(key, n, "a whole number")}
		}
		return nil
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return []error{typeError(key, n, "a single value")}
		}
		return nil
	default:
		if n.Decode(reflect.New(t).Interface()) != nil {
			return []error{typeError(key, n, "a "+t.String())}
		}
		return nil
	}
}

// yamlFields maps the yaml keys of struct type t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

func unknownKey(key string, line int, known map[string]reflect.Type) error {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	slices.Sort(names)
	msg := "unknown key; the keys here are " + strings.Join(names, ", ")
	if last := key[strings.LastIndex(key, ".")+1:]; strings.Contains(strings.ToLower(last), "secret") {
		msg = "unknown key; the secret is read from env CORE_SECRET only, never from the file"
	}
	return &fieldError{key: key, line: line, msg: msg}
}

func typeError(key string, n *yaml.Node, want string) error {
	if key == "" {
		key = "top level"
	}
	return &fieldError{key: key, line: n.Line, msg: fmt.Sprintf("must be %s, got %s", want, nodeKind(n))}
}

// nodeKind describes n for an error message: a scalar by its value.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	default:
		return strconv.Quote(n.Value)
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// envVar is one environment override.
type envVar struct {
	name string
	// aliases are older names of the same variable, still read. Set to
	// different values, name and an alias are an error.
	aliases []string
	key     string // the key it overrides; "[*]" stands for every index
	// emptyCounts: set but empty still overrides (otherwise it counts as unset).
	emptyCounts bool
	set         func(c *Config, v string) error
}

// envVars are every environment override, in the order they are applied
// (a later one wins over an earlier one for the same key). Harbor's names
// first, then Berth's own.
var envVars = []envVar{
	{name: "JOB_SERVICE_PROTOCOL", key: "protocol", set: setString(func(c *Config) *string { return &c.Protocol })},
	{name: "JOB_SERVICE_PORT", key: "port", set: setInt(func(c *Config) *int { return &c.Port })},
	{name: "JOB_SERVICE_HTTPS_CERT", key: "https_config.cert", set: setString(func(c *Config) *string { return &c.HTTPSConfig.Cert })},
	{name: "JOB_SERVICE_HTTPS_KEY", key: "https_config.key", set: setString(func(c *Config) *string { return &c.HTTPSConfig.Key })},
	{name: "JOB_SERVICE_HTTPS_CLIENT_CA", key: "https_config.client_ca", set: setString(func(c *Config) *string { return &c.HTTPSConfig.ClientCA })},
	{name: "JOB_SERVICE_POOL_WORKERS", key: "worker_pool.workers", set: setInt(func(c *Config) *int { return &c.WorkerPool.Workers })},
	{name: "JOB_SERVICE_POOL_BACKEND", key: "worker_pool.backend", set: setString(func(c *Config) *string { return &c.WorkerPool.Backend })},
	// Set but empty, it selects the embedded in-memory backend even when the file names a Redis.
	{name: "JOB_SERVICE_POOL_REDIS_URL", key: "worker_pool.redis_pool.redis_url", emptyCounts: true,
		set: setString(func(c *Config) *string { return &c.WorkerPool.RedisPool.RedisURL })},
	{name: "JOB_SERVICE_POOL_REDIS_NAMESPACE", key: "worker_pool.redis_pool.namespace",
		set: setString(func(c *Config) *string { return &c.WorkerPool.RedisPool.Namespace })},
	{name: envIdleTimeout, aliases: []string{"JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT"}, key: keyIdleTimeout,
		set: setInt(func(c *Config) *int { return &c.WorkerPool.RedisPool.IdleTimeoutSecond })},
	{name: "CORE_SECRET", key: "secret", set: setString(func(c *Config) *string { return &c.Secret })},
	{name: "CORE_URL", key: "core_url", set: setString(func(c *Config) *string { return &c.CoreURL })},
	// Harbor's: how long a job may run (Harbor's patched gocraft/work keeps
	// a running job visible that long); Berth's one bound is the reaper's.
	{name: envMaxJobDuration, key: keyMaxJobDuration, set: func(c *Config, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/int64(time.Second) {
			return fmt.Errorf("must be a whole number of seconds, got %q", v)
		}
		c.Reaper.MaxJobDuration = Duration(time.Duration(n) * time.Second)
		return nil
	}},
	// Harbor's level of its process-wide logger; BERTH_LOG_LEVEL wins over it.
	{name: "LOG_LEVEL", key: "loggers[*].level", set: setLoggerLevels},
	{name: "METRIC_NAMESPACE", key: "metric.namespace", emptyCounts: true, set: setString(func(c *Config) *string { return &c.Metric.Namespace })},
	{name: "METRIC_SUBSYSTEM", key: "metric.subsystem", emptyCounts: true, set: setString(func(c *Config) *string { return &c.Metric.Subsystem })},
	{name: "BERTH_BIND_ADDRESS", key: "bind_address", emptyCounts: true, set: setString(func(c *Config) *string { return &c.BindAddress })},
	{name: "BERTH_PLUGINS_DIR", key: "plugins_dir", set: setString(func(c *Config) *string { return &c.PluginsDir })},
	{name: "BERTH_SHUTDOWN_GRACE", key: "shutdown_grace", set: func(c *Config, v string) error {
		d, err := parseDuration(v)
		if err == nil {
			c.ShutdownGrace = d
		}
		return err
	}},
	{name: "BERTH_PLUGIN_REATTACH", key: "plugins.reattach", set: func(c *Config, v string) error {
		m, err := parseReattach(v)
		if err == nil {
			c.Reattach = m
		}
		return err
	}},
	{name: "BERTH_LOG_LEVEL", key: "loggers[*].level", set: setLoggerLevels},
}

// Env variables and keys that Load's Harbor mapping looks at.
const (
	envIdleTimeout    = "JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND"
	envMaxJobDuration = "MAX_JOB_DURATION_SECONDS"
	keyIdleTimeout    = "worker_pool.redis_pool.idle_timeout_second"
	keyMaxJobDuration = "reaper.max_job_duration"
)

func setLoggerLevels(c *Config, v string) error {
	for i := range c.Loggers {
		c.Loggers[i].Level = v
	}
	return nil
}

func setString(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		*field(c) = v
		return nil
	}
}

func setInt(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("must be a whole number, got %q", v)
		}
		*field(c) = n
		return nil
	}
}

// applyEnv applies every override that lookup finds set. It returns the
// variables it applied, each under the name it was read by (so that
// Validate's findings can name it), and one error per value it could not
// use.
func applyEnv(c *Config, lookup func(string) (string, bool)) ([]envVar, error) {
	var applied []envVar
	var errs []error
	for _, ev := range envVars {
		name, v, ok, err := ev.lookup(lookup)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		if err := ev.set(c, v); err != nil {
			errs = append(errs, &fieldError{key: ev.key, env: name, msg: err.Error()})
			continue
		}
		ev.name = name
		applied = append(applied, ev)
	}
	return applied, errors.Join(errs...)
}

// lookup finds ev under its name or an alias. Set to different values, the
// two are an error.
func (ev envVar) lookup(lookup func(string) (string, bool)) (name, value string, ok bool, err error) {
	for _, n := range append([]string{ev.name}, ev.aliases...) {
		v, set := lookup(n)
		if !set || (v == "" && !ev.emptyCounts) {
			continue
		}
		if !ok {
			name, value, ok = n, v, true
			continue
		}
		if strings.TrimSpace(v) != strings.TrimSpace(value) {
			return "", "", false, &fieldError{key: ev.key, env: name + ", " + n,
				msg: fmt.Sprintf("%s=%q and %s=%q disagree; set only %s (%s is its older name)", name, value, n, v, name, n)}
		}
	}
	return name, value, ok, nil
}

// blameEnv marks each of Validate's findings whose value came from an env
// variable with that variable's name.
func blameEnv(err error, applied []envVar) error {
	if err == nil || len(applied) == 0 {
		return err
	}
	for _, e := range problems(err) {
		var fe *fieldError
		if !errors.As(e, &fe) {
			continue
		}
		for _, ev := range applied {
			if keyMatches(ev.key, fe.key) {
				fe.env = ev.name
			}
		}
	}
	return err
}

// keyMatches reports whether key is pattern, where "[*]" in pattern stands
// for any index.
func keyMatches(pattern, key string) bool {
	prefix, suffix, ok := strings.Cut(pattern, "[*]")
	if !ok {
		return pattern == key
	}
	if !strings.HasPrefix(key, prefix+"[") || !strings.HasSuffix(key, "]"+suffix) {
		return false
	}
	return isWholeNumber(key[len(prefix)+1 : len(key)-len(suffix)-1])
}

// problems flattens err, joined (errors.Join) at any depth, into its parts.
func problems(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var errs []error
	for _, e := range j.Unwrap() {
		errs = append(errs, problems(e)...)
	}
	return errs
}
