package main

import "github.com/berth-dev/berth/sdk"

func main() { sdk.Serve(sdk.Jobs{"DEMO": Job{}}) }
