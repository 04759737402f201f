package main

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/plugins/internal/notify"
	"github.com/berth-dev/berth/sdk"
)

func main() {
	job, config := newPlugin(&notify.Holder{Lookup: os.LookupEnv})
	if err := sdk.Serve(sdk.Jobs{"SLACK": job}, config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
