package main

import (
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/sdk/sdktest"
)

// FuzzValidate: no parameters panic Validate or make it fail other than
// by refusing them (sdktest fails the test when the call itself fails).
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"src_resource":"{\"registry\":{\"type\":\"docker-registry\",\"url\":\"https://a.example.com\"},\"metadata\":{\"repository\":{\"name\":\"a\"},\"artifacts\":[{\"tags\":[\"v1\"]}]}}","dst_resource":{"registry":{"type":"harbor","url":"https://b.example.com"},"metadata":{"repository":{"name":"b"}}},"speed":-1}`))
	f.Add([]byte(`{"src_resource":{},"dst_resource":"[","chunk_size":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var params map[string]any
		if json.Unmarshal(raw, &params) != nil {
			return
		}
		job, config := newPlugin()
		_ = sdktest.Validate(t, job, params, sdktest.WithPlugin(config))
	})
}
