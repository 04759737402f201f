package sdk_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

// Greeter is a job type: it greets the "who" parameter, slowly.
type Greeter struct{}

func (Greeter) MaxFails() uint    { return 2 }
func (Greeter) ShouldRetry() bool { return true }

func (Greeter) Validate(params sdk.Parameters) error {
	if _, ok := params["who"].(string); !ok {
		return errors.New(`parameter "who" is required and must be a string`)
	}
	return nil
}

func (Greeter) Run(ctx sdk.Context, params sdk.Parameters) error {
	ctx.Logger().Info("greeting", "who", params["who"])
	if err := ctx.Checkin("half way"); err != nil {
		return err
	}
	select {
	case <-time.After(10 * time.Millisecond):
	case <-ctx.Done():
		if cmd, ok := ctx.OPCommand(); ok {
			return fmt.Errorf("asked to %s", cmd)
		}
		return ctx.Err()
	}
	return ctx.Checkin("hello, " + params["who"].(string))
}

// A plugin's main is one call. Build the program and put the binary into
// the host's plugins directory.
func ExampleServe() {
	sdk.Serve(sdk.Jobs{"GREETER": Greeter{}})
}

// sdktest runs a job in a unit test, without a host.
func Example_test() {
	res := sdktest.Run(Greeter{}, sdk.Parameters{"who": "world"})
	fmt.Println(res.Err, res.CheckIns, res.Logs[0].Message)
	fmt.Println(sdktest.Validate(Greeter{}, sdk.Parameters{"who": 42}))
	// Output:
	// <nil> [half way hello, world] greeting who=world
	// parameter "who" is required and must be a string
}
