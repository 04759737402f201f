package main

import (
	"errors"

	"github.com/berth-dev/berth/sdk"
)

type job struct{}

func (job) MaxFails() uint                        { return 1 }
func (job) ShouldRetry() bool                     { return false }
func (job) Validate(sdk.Parameters) error         { return nil }
func (job) Run(sdk.Context, sdk.Parameters) error { return errors.New("dupdemo never runs") }

func main() { sdk.Serve(sdk.Jobs{"DEMO": job{}}) }
