package main

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/sdk"
)

func main() {
	job, config := newPlugin()
	if err := sdk.Serve(sdk.Jobs{"REPLICATION": job}, config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
