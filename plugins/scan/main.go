package main

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/sdk"
)

func main() {
	job, config := newPlugin(&holder{})
	if err := sdk.Serve(sdk.Jobs{"IMAGE_SCAN": job}, config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
