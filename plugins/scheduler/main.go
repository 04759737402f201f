package main

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/sdk"
)

func main() {
	if err := sdk.Serve(sdk.Jobs{"SCHEDULER": sdk.Typed[Params](Job{})}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
