package main

import (
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/sdk/sdktest"
)

// FuzzValidate: no parameters panic Validate or make it fail other than
// by refusing them (sdktest fails the test when the call itself fails).
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"vendor_type":"GARBAGE_COLLECTION","callback_func":"x","params":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var params map[string]any
		if json.Unmarshal(raw, &params) != nil {
			return
		}

		_ = sdktest.Validate(t, scheduler, params)
	})
}
