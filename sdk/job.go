package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/berth-dev/berth/sdk/internal/core"
	"github.com/berth-dev/berth/sdk/schema"
)

// Runner is the one method a job type must have: it does the work, with
// the parameters decoded into P (a struct with JSON tags, or Parameters
// for none of that).
type Runner[P any] interface {
	Run(ctx Context, params P) error
}

// Validator is implemented by a job type that checks its parameters beyond
// their JSON Schema; an error rejects the submission with a 400 and the
// error's text, so say which parameter is wrong and why.
type Validator[P any] interface {
	Validate(params P) error
}

// Retries tells the host how to retry a failed run: MaxFails is how many
// failed runs are allowed (0 means the host default, 4), ShouldRetry
// whether a failed run is retried at all. Embed Defaults for both.
type Retries interface {
	MaxFails() uint
	ShouldRetry() bool
}

// Concurrency is implemented by a job type that limits how many of its
// runs go at once, across every host on one Redis (0 is no limit).
type Concurrency interface {
	MaxConcurrency() uint
}

// Versioned is implemented by a job type that reports a version (shown in
// the host's log and listings).
type Versioned interface {
	Version() string
}

// Snoozer is implemented by a job type that bounds how many times one run
// may snooze (0 means the host default, 100).
type Snoozer interface {
	MaxSnoozes() uint
}

// Defaults, embedded in a job type, gives it the host's retry defaults:
// up to four failed runs, retried.
type Defaults struct{}

// MaxFails is 0: the host default (4).
func (Defaults) MaxFails() uint { return 0 }

// ShouldRetry is true.
func (Defaults) ShouldRetry() bool { return true }

// Parameters are parameters left undecoded: a job whose Run takes
// Parameters gets the JSON object as a map (numbers are float64) and has
// no schema.
type Parameters = map[string]any

// Job is a job type ready to serve; make one with Typed.
type Job = core.Job

// Jobs maps job names to their implementations. A name is what clients put
// in a submission's "name"; two plugins must not serve the same name.
type Jobs = map[string]Job

// Typed makes a job type of r, whose Run (and, if r is a Validator[P],
// Validate) take the parameters decoded into P. r may implement Retries
// (or embed Defaults; without either it gets the defaults), Concurrency,
// Versioned and Snoozer. Decoding refuses unknown parameters and wrong
// types with an error that names the parameter. A P that JSON cannot
// carry (a channel field) makes Serve fail, naming the field.
func Typed[P any](r Runner[P]) Job {
	// What the job declares is asked again at every Describe: it may
	// depend on the plugin's configuration (WithConfig).
	declare := func(spec core.Spec) core.Spec {
		rt, ok := r.(Retries)
		if !ok {
			rt = Defaults{}
		}
		spec.MaxFails, spec.ShouldRetry = rt.MaxFails(), rt.ShouldRetry()
		if c, ok := r.(Concurrency); ok {
			spec.MaxConcurrency = c.MaxConcurrency()
		}
		if v, ok := r.(Versioned); ok {
			spec.Version = v.Version()
		}
		if s, ok := r.(Snoozer); ok {
			spec.MaxSnoozes = s.MaxSnoozes()
		}
		return spec
	}
	spec := declare(core.Spec{Declare: declare})
	var zero P
	t := reflect.TypeOf(&zero).Elem()
	raw, err := schema.For(t)
	if err != nil {
		spec.Err = err
	}
	spec.ParamsSchema = raw
	v, validates := r.(Validator[P])
	spec.Validates = validates || spec.ParamsSchema == nil && t.Kind() != reflect.Map
	spec.Validate = func(params []byte) error {
		p, err := decode[P](params)
		if err != nil || !validates {
			return err
		}
		return v.Validate(p)
	}
	spec.Run = func(ctx *core.JobContext, params []byte) error {
		p, err := decode[P](params)
		if err != nil {
			return Permanent(fmt.Errorf("the parameters do not decode: %w", err))
		}
		return r.Run(ctx, p)
	}
	return core.NewJob(spec)
}

// decode decodes a JSON object into P, strictly: an unknown parameter or a
// wrong type is an error that names the parameter.
func decode[P any](raw []byte) (P, error) {
	var p P
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	t := reflect.TypeOf(&p).Elem()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(&p)
	var terr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return p, nil
	case errors.As(err, &terr) && terr.Field != "":
		return p, fmt.Errorf("parameter %q must be %s, got %s", terr.Field, jsonType(terr.Type), terr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return p, fmt.Errorf("unknown parameter %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return p, fmt.Errorf("the parameters are not a JSON object of the expected shape: %v", err)
}

// jsonType says what JSON a Go type takes.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return "an object"
}

// Permanent marks err as a failure that a retry cannot mend (a wrong
// password, a missing repository): the job ends in Error at once, whatever
// its retry rules.
func Permanent(err error) error { return core.Permanent(err) }

// Snooze asks the host to run the job again after d (at least a second),
// without counting a failure: a report not ready yet, a rate limit. The
// reason goes to the job's log. A run may snooze a bounded number of times
// (Snoozer).
func Snooze(d time.Duration, reason string) error { return core.Snooze(d, reason) }
