package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

type params struct {
	Image       string   `json:"image"`
	HoldSeconds *float64 `json:"hold_seconds,omitempty" jsonschema:"minimum=0,maximum=3600"`
	Fail        bool     `json:"fail,omitempty"`
	LogLines    int      `json:"log_lines,omitempty" jsonschema:"minimum=0,maximum=100000"`
	Mode        string   `json:"mode,omitempty" jsonschema:"enum=fast,enum=slow"`
	Count       int      `json:"count,omitempty" jsonschema:"minimum=1"`
	Tags        []string `json:"tags,omitempty" jsonschema:"maxItems=2"`
	Inner       *struct {
		URL string `json:"url" jsonschema:"description=where the registry listens"`
	} `json:"inner,omitempty"`
}

func TestGeneratedSchemaChecksWithMessagesThatNameTheParameter(t *testing.T) {
	t.Parallel()
	raw, err := For(reflect.TypeOf(params{}))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil || doc["type"] != "object" || doc["additionalProperties"] != false {
		t.Fatalf("schema %s: want a closed object", raw)
	}
	s, err := Compile(raw, "parameter")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, params, want string
	}{
		{"Valid", `{"image":"demo","hold_seconds":0.5,"log_lines":3,"mode":"fast","inner":{"url":"x"}}`, ""},
		{"Empty", ``, `parameter "image" is required`},
		{"Null", `{"image":null}`, `parameter "image" must be a string, got null`},
		{"WrongType", `{"image":7}`, `parameter "image" must be a string, got 7`},
		{"Range", `{"image":"d","hold_seconds":4000}`, `parameter "hold_seconds" must be a number from 0 to 3600, got 4000`},
		{"WholeNumberRange", `{"image":"d","log_lines":-1}`, `parameter "log_lines" must be a whole number from 0 to 100000, got -1`},
		{"Fraction", `{"image":"d","log_lines":1.5}`, `parameter "log_lines" must be a whole number, got 1.5`},
		{"LowerBoundOnly", `{"image":"d","count":0}`, `parameter "count" must be a whole number of at least 1, got 0`},
		{"Bool", `{"image":"d","fail":"yes"}`, `parameter "fail" must be true or false, got "yes"`},
		{"Enum", `{"image":"d","mode":"turbo"}`, `parameter "mode" must be one of "fast", "slow", got "turbo"`},
		{"Unknown", `{"image":"d","hold":1}`, `unknown parameter "hold" (known: count, fail, hold_seconds, image, inner, log_lines, mode, tags)`},
		{"NestedWithItsDescription", `{"image":"d","inner":{}}`, `parameter "inner.url" is required: where the registry listens`},
		{"Items", `{"image":"d","tags":["a","b","c"]}`, `parameter "tags" must hold at most 2 items, got 3`},
		{"NotAnObject", `[1]`, `the parameters must be an object, got a list`},
		{"Several", `{"hold_seconds":-1}`, `parameter "hold_seconds" must be a number from 0 to 3600, got -1; parameter "image" is required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := s.Check([]byte(tc.params))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v", tc.params, err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Check(%s) = %v\nwant %s", tc.params, err, tc.want)
			}
		})
	}
	if err := s.Check([]byte(`{`)); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("Check of bad JSON: %v", err)
	}
}

func TestNonStructsHaveNoSchema(t *testing.T) {
	t.Parallel()
	if raw, err := For(reflect.TypeOf(map[string]any{})); raw != nil || err != nil {
		t.Fatalf("For(map) = %s, %v", raw, err)
	}
	if _, err := Compile([]byte(`{"type": 7}`), "setting"); err == nil {
		t.Fatal("a broken schema compiled")
	}
}
