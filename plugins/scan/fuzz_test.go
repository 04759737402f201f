package main

import (
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/sdk/sdktest"
)

// FuzzValidate: no parameters panic Validate or make it fail other than
// by refusing them (sdktest fails the test when the call itself fails).
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"registration":{"url":"http://a.example.com","auth":"X-ScannerAdapter-API-Key","access_credential":"k"},"scanRequest":"{\"registry\":{\"url\":\"http://r.example.com\"},\"artifact\":{\"repository\":\"a\",\"digest\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}}","mimeTypes":["application/vnd.security.vulnerability.report; version=1.1"]}`))
	f.Add([]byte(`{"registration":"{"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var params map[string]any
		if json.Unmarshal(raw, &params) != nil {
			return
		}
		job, config := plugin()
		_ = sdktest.Validate(t, job, params, sdktest.WithPlugin(config))
	})
}
