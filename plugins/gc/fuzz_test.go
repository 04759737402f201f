package main

import (
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/sdk/sdktest"
)

// FuzzValidate: no parameters panic Validate or make it fail other than
// by refusing them (sdktest fails the test when the call itself fails).
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"storage_root":"/nonexistent","dry_run":true,"workers":3,"time_window":0}`))
	f.Add([]byte(`{"registry_config":"/etc/passwd","storage_root":"/"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var params map[string]any
		if json.Unmarshal(raw, &params) != nil {
			return
		}
		job, config := newPlugin()
		_ = sdktest.Validate(t, job, params, sdktest.WithPlugin(config))
	})
}
