package main

import (
	"encoding/json"
	"testing"
)

// FuzzValidate: no parameters panic Validate or make it fail other than
// by refusing them (sdktest fails the test when the call itself fails).
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"payload":"{}","address":"http://example.com/hook"}`))
	f.Add([]byte(`{"address":"ftp://x"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var params map[string]any
		if json.Unmarshal(raw, &params) != nil {
			return
		}
		p := newTestPlugin(env{})
		_ = p.validate(t, params, nil)
	})
}
