package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/berth-dev/berth/sdk"
)

type job struct{ sdk.Defaults }

func (job) Run(sdk.Context, sdk.Parameters) error { return errors.New("dupdemo never runs") }

func main() {
	if err := sdk.Serve(sdk.Jobs{"DEMO": sdk.Typed[sdk.Parameters](job{})}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
