package main

import (
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/sdk/sdktest"
)

// FuzzValidate: no parameters panic Validate or make it fail other than
// by refusing them (sdktest fails the test when the call itself fails).
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"image":"demo"}`))
	f.Add([]byte(`{"image":"demo","hold_seconds":1.5,"log_lines":3}`))
	f.Add([]byte(`{"image":"x","fail":true}`))
	f.Add([]byte(`{"hold_seconds":-1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var params map[string]any
		if json.Unmarshal(raw, &params) != nil {
			return
		}

		_ = sdktest.Validate(t, demo, params)
	})
}
