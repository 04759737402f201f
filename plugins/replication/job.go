package main

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/egress"
)

// version is the REPLICATION job's version, also its user agent's.
const version = "1.0.0"

// Settings are plugin_config.replication of the host's configuration.
type Settings struct {
	AllowedNetworks []string `json:"allowed_networks,omitempty" jsonschema:"description=networks (CIDR or single IPs) of registries that may be called although they are loopback/private/link-local or otherwise refused"`
}

// Job is the REPLICATION job type.
type Job struct{ guard *atomic.Pointer[egress.Guard] }

var (
	_ sdk.Runner[Params]    = Job{}
	_ sdk.Validator[Params] = Job{}
	_ sdk.Retries           = Job{}
	_ sdk.Versioned         = Job{}
)

// newPlugin returns the job type and the configuration option that main
// serves (and tests serve through sdktest.WithPlugin).
func newPlugin() (sdk.Job, sdk.Option) {
	j := Job{guard: &atomic.Pointer[egress.Guard]{}}
	return sdk.Typed[Params](j), sdk.WithConfig(j.configure)
}

func (j Job) configure(s Settings) error {
	for i, n := range s.AllowedNetworks {
		if _, err := egress.New([]string{n}); err != nil {
			return fmt.Errorf(`setting "allowed_networks[%d]" must be a network in CIDR notation (such as "10.0.0.0/8") or an IP address, got %q`, i, n)
		}
	}
	g, err := egress.New(s.AllowedNetworks)
	if err != nil {
		return err
	}
	j.guard.Store(g)
	return nil
}

// loadGuard is the configured guard; before Configure (which the host
// always calls first), the default one.
func (j Job) loadGuard() *egress.Guard {
	if g := j.guard.Load(); g != nil {
		return g
	}
	j.guard.CompareAndSwap(nil, &egress.Guard{})
	return j.guard.Load()
}

// MaxFails is Harbor's: 3.
func (Job) MaxFails() uint { return 3 }

// ShouldRetry is Harbor's: a failed copy is run again, and skips what
// the failed run copied.
func (Job) ShouldRetry() bool { return true }

// Version of the REPLICATION job.
func (Job) Version() string { return version }

// Validate refuses at submission what no run could copy; the error names
// the parameter and says what is expected.
func (j Job) Validate(p Params) error {
	_, err := resolve(p, j.loadGuard())
	return err
}

// Run copies the artifacts. Parameters that do not resolve fail for good
// (the job was submitted without Validate, or before a configuration
// change); so does a refused credential or address.
func (j Job) Run(ctx sdk.Context, p Params) error {
	g := j.loadGuard()
	pl, err := resolve(p, g)
	if err != nil {
		return sdk.Permanent(err)
	}
	return newRun(ctx, pl, g).run(ctx)
}

// errSourceMissing is the error of an artifact the source does not have.
var errSourceMissing = errors.New("the source has no such artifact")

// permanent says whether err cannot be mended by running the job again:
// a refused address, an artifact the source does not have. A refused
// credential is not: the job's runs are retried by its rules, as
// Harbor's are (a secret rotated meanwhile may be fixed), though its
// blobs are not retried within a run (see retryable).
func permanent(err error) bool {
	var refused *egress.RefusedError
	return errors.As(err, &refused) || errors.Is(err, errSourceMissing)
}
