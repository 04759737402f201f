package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/berth-dev/berth/sdk/internal/core"
	"github.com/berth-dev/berth/sdk/schema"
)

// Serve serves jobs to the Berth host that started this program, and
// returns nil when the host lets it go; it returns an error when it cannot
// serve (no jobs, a zero Job). Run by hand without the host, the program
// says it is a Berth plugin and exits (see BERTH_PLUGIN_DEBUG in the
// package documentation).
func Serve(jobs Jobs, opts ...Option) error {
	var o core.ServeOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return err
		}
	}
	return core.Serve(jobs, o)
}

// Option changes how Serve serves.
type Option func(*core.ServeOptions) error

// WithConfig takes the plugin's section of the host configuration
// (plugin_config.<plugin file name> in the host's YAML, with secrets from
// env or files): before any job, Serve decodes it into C (strictly: an
// unknown setting or a wrong type is an error naming it, and the host does
// not start) and calls apply, which may refuse it too. The section's JSON
// Schema, generated from C, is shown to operators.
func WithConfig[C any](apply func(C) error) Option {
	return func(o *core.ServeOptions) error {
		var zero C
		raw, err := schema.For(reflect.TypeOf(&zero).Elem())
		if err != nil {
			return err
		}
		o.Config = core.Config{Schema: raw, Apply: func(section []byte) error {
			var c C
			dec := json.NewDecoder(bytes.NewReader(section))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				var terr *json.UnmarshalTypeError
				switch {
				case errors.As(err, &terr) && terr.Field != "":
					return fmt.Errorf("setting %q must be %s, got %s", terr.Field, jsonType(terr.Type), terr.Value)
				case strings.HasPrefix(err.Error(), "json: unknown field "):
					return fmt.Errorf("unknown setting %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
				}
				return fmt.Errorf("the configuration is not a JSON object of the expected shape: %v", err)
			}
			return apply(c)
		}}
		return nil
	}
}
