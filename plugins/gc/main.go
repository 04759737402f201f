package main

import (
	"log"

	"github.com/berth-dev/berth/sdk"
)

func main() {
	job, config := newPlugin()
	if err := sdk.Serve(sdk.Jobs{"GARBAGE_COLLECTION": job}, config); err != nil {
		log.Fatal(err)
	}
}
