package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/berth-dev/berth/sdk/proto"
)

// Secret references: a plugin_config value written as {$env: NAME} is the
// value of env variable NAME, {$file: /path} the content of the file (one
// trailing newline dropped), so that secrets stay out of the YAML.
const (
	refEnv  = "$env"
	refFile = "$file"
)

// PluginSections returns each plugin's section of plugin_config as JSON,
// with its secret references resolved through lookup (env) and the file
// system. Errors name the key and never show a value.
func (c *Config) PluginSections(lookup func(string) (string, bool)) (map[string][]byte, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if len(c.PluginConfig) == 0 {
		return nil, nil
	}
	out := make(map[string][]byte, len(c.PluginConfig))
	var errs []error
	names := make([]string, 0, len(c.PluginConfig))
	for name := range c.PluginConfig {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		key := "plugin_config." + name
		if name == "" || strings.ContainsAny(name, "/\\ \t") {
			errs = append(errs, &fieldError{key: key, msg: "must be a plugin's file name or one of its job names"})
			continue
		}
		v, err := resolve(c.PluginConfig[name], key, lookup)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			errs = append(errs, &fieldError{key: key, msg: "cannot be given to the plugin as JSON: " + err.Error()})
			continue
		}
		out[name] = raw
	}
	return out, errors.Join(errs...)
}

// resolve replaces the secret references in v.
func resolve(v any, key string, lookup func(string) (string, bool)) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if ref, ok := x[refEnv]; ok {
				name, ok := ref.(string)
				if !ok || name == "" {
					return nil, &fieldError{key: key, msg: "{$env: NAME} needs the name of an env variable"}
				}
				val, set := lookup(name)
				if !set {
					return nil, &fieldError{key: key, msg: fmt.Sprintf("env variable %s is not set", name)}
				}
				return val, nil
			}
			if ref, ok := x[refFile]; ok {
				path, ok := ref.(string)
				if !ok || path == "" {
					return nil, &fieldError{key: key, msg: "{$file: /path} needs a file path"}
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return nil, &fieldError{key: key, msg: fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err))}
				}
				return strings.TrimSuffix(string(b), "\n"), nil
			}
		}
		out := make(map[string]any, len(x))
		var errs []error
		for k, item := range x {
			r, err := resolve(item, joinKey(key, k), lookup)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out[k] = r
		}
		return out, errors.Join(errs...)
	case []any:
		out := make([]any, len(x))
		var errs []error
		for i, item := range x {
			r, err := resolve(item, fmt.Sprintf("%s[%d]", key, i), lookup)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out[i] = r
		}
		return out, errors.Join(errs...)
	}
	return v, nil
}

// parseReattach reads proto.ReattachEnv: plugins started by hand in debug
// mode, by file name.
func parseReattach(v string) (map[string]proto.Reattach, error) {
	var m map[string]proto.Reattach
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, fmt.Errorf("must be the JSON a plugin prints in debug mode (%s=1): %v", proto.DebugEnv, err)
	}
	for name, r := range m {
		if _, err := r.Config(); err != nil {
			return nil, fmt.Errorf("plugin %s: %v", name, err)
		}
	}
	return m, nil
}
