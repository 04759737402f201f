package main

import (
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

var scheduler = sdk.Typed[Params](Job{})

// harbors is what Harbor's job service checks in for raw parameters: it
// decodes them as gocraft/work does (encoding/json into a map), adds its
// mark to a periodic execution's, and the job encodes them with
// json.Marshal.
func harbors(t *testing.T, raw string, fire string) string {
	t.Helper()
	var args map[string]interface{}
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	if fire != "" {
		if args == nil {
			args = map[string]interface{}{}
		}
		args["_job_kind_periodic_"] = fire
	}
	out, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestChecksInItsParametersAsHarborsDoes(t *testing.T) {
	t.Parallel()
	const policy = "5f3c2a1b0e9d8c7b6a594837"
	periodic := []sdktest.Option{sdktest.WithJobID(policy + "@1700000000"), sdktest.WithProperties(map[string]string{"upstream_job_id": policy})}
	tests := []struct {
		name   string
		params string
		opts   []sdktest.Option
		fire   string
		want   string
	}{
		{"Harbor20Execution", `{"params":"{\"id\":3}","callback_func":"REPLICATION"}`, periodic, "1700000000",
			`{"_job_kind_periodic_":"1700000000","callback_func":"REPLICATION","params":"{\"id\":3}"}`},
		{"HarborExecutionWithoutParameters", `{}`, periodic, "1700000000", `{"_job_kind_periodic_":"1700000000"}`},
		{"NullParameters", `null`, periodic, "1700000000", `{"_job_kind_periodic_":"1700000000"}`},
		{"MarkIsTheFireTime", `{"_job_kind_periodic_":"1"}`, periodic, "1700000000", `{"_job_kind_periodic_":"1700000000"}`},
		{"Generic", `{"callback_func":"GC"}`, nil, "", `{"callback_func":"GC"}`},
		{"GenericWithout", `{}`, nil, "", `{}`},
		{"Encoding", `{"z":1e21,"big":12345678901234567890,"f":0.10,"int":3.0,"html":"<a&b>","sep":"\u2028","n":{"b":[true,null],"a":""}}`,
			nil, "", `{"big":12345678901234567000,"f":0.1,"html":"\u003ca\u0026b\u003e","int":3,"n":{"a":"","b":[true,null]},"sep":"\u2028","z":1e+21}`},
		{"SubJobIsNoExecution", `{"a":1}`, []sdktest.Option{sdktest.WithProperties(map[string]string{"upstream_job_id": policy})}, "", `{"a":1}`},
		{"NotAFireTime", `{"a":1}`, []sdktest.Option{sdktest.WithJobID(policy + "@soon"), sdktest.WithProperties(map[string]string{"upstream_job_id": policy})}, "", `{"a":1}`},
		{"OtherPolicy", `{"a":1}`, []sdktest.Option{sdktest.WithJobID(policy + "@1700000000"), sdktest.WithProperties(map[string]string{"upstream_job_id": "other"})}, "", `{"a":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := sdktest.Run(t, scheduler, json.RawMessage(tc.params), tc.opts...)
			if res.Kind != sdktest.Succeeded {
				t.Fatalf("run = %s %v", res.Kind, res.Err)
			}
			if len(res.CheckIns) != 1 || res.CheckIns[0] != tc.want {
				t.Fatalf("check-ins %q, want [%q]", res.CheckIns, tc.want)
			}
			if h := harbors(t, tc.params, tc.fire); h != tc.want {
				t.Fatalf("Harbor's job would check in %q, not %q", h, tc.want)
			}
		})
	}
}

func TestTakesAnyParameters(t *testing.T) {
	t.Parallel()
	for _, params := range []any{nil, map[string]any{}, map[string]any{"anything": []any{1, "two", map[string]any{"x": nil}}}} {
		if err := sdktest.Validate(t, scheduler, params); err != nil {
			t.Errorf("Validate(%v) = %v", params, err)
		}
	}
	var r sdk.Retries = Job{}
	if r.MaxFails() != 3 || !r.ShouldRetry() {
		t.Fatalf("MaxFails %d ShouldRetry %v, want Harbor's 3 true", r.MaxFails(), r.ShouldRetry())
	}
}
