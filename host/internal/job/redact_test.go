package job_test

import (
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/host/internal/job"
)

func TestRedactParameters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"Nothing", `{"image":"demo","tries":3}`, `{"image":"demo","tries":3}`},
		{"Flat", `{"password":"pw","user":"u"}`, `{"password":"[redacted]","user":"u"}`},
		{"AnyCase", `{"Registry_PASSWORD":"pw","X-Token":"t","Authorization":"Basic abc"}`,
			`{"Registry_PASSWORD":"[redacted]","X-Token":"[redacted]","Authorization":"[redacted]"}`},
		{"Nested", `{"registry":{"credential":{"type":"basic","access_key":"u","access_secret":"s"}}}`,
			`{"registry":{"credential":"[redacted]"}}`},
		{"NestedSecretOnly", `{"registry":{"url":"http://r","access_secret":"s","api_key":"k"}}`,
			`{"registry":{"access_secret":"[redacted]","api_key":"[redacted]","url":"http://r"}}`},
		{"InArrays", `{"targets":[{"token":"t","name":"a"},{"name":"b"}]}`,
			`{"targets":[{"name":"a","token":"[redacted]"},{"name":"b"}]}`},
		// Harbor sends a replication's resources and a scan's request as
		// JSON strings.
		{"JSONString", `{"src_resource":"{\"registry\":{\"credential\":{\"access_secret\":\"s\"}},\"name\":\"r\"}"}`,
			`{"src_resource":"{\"name\":\"r\",\"registry\":{\"credential\":\"[redacted]\"}}"}`},
		{"ScanRequest", `{"scanRequest":"{\"registry\":{\"url\":\"http://r\",\"authorization\":\"Basic eA==\"}}"}`,
			`{"scanRequest":"{\"registry\":{\"authorization\":\"[redacted]\",\"url\":\"http://r\"}}"}`},
		{"NotJSONString", `{"note":"{not json"}`, `{"note":"{not json"}`},
		{"NullSecretStaysNull", `{"password":null}`, `{"password":null}`},
		{"NumberSecret", `{"token":12345}`, `{"token":"[redacted]"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in job.Parameters
			if err := json.Unmarshal([]byte(tt.in), &in); err != nil {
				t.Fatal(err)
			}
			before, _ := json.Marshal(in)
			got, err := json.Marshal(job.RedactParameters(in))
			if err != nil {
				t.Fatal(err)
			}
			var want any
			_ = json.Unmarshal([]byte(tt.want), &want)
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Errorf("RedactParameters(%s) = %s; want %s", tt.in, got, wantJSON)
			}
			if after, _ := json.Marshal(in); string(after) != string(before) {
				t.Errorf("the input was changed: %s, was %s", after, before)
			}
		})
	}
	if job.RedactParameters(nil) != nil {
		t.Error("RedactParameters(nil) is not nil")
	}
	st := &job.Stats{ID: "x", Parameters: job.Parameters{"password": "pw"}}
	if r := job.RedactStats(st); r == st || r.Parameters["password"] != job.Redacted || st.Parameters["password"] != "pw" {
		t.Errorf("RedactStats = %+v (input %+v); want a redacted copy", r, st)
	}
}
