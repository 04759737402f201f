package jsondiff

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	want := `{"job":{"id":"x","n":1,"tags":["a","b"]}}`
	for _, tc := range []struct {
		name, got, diff string
	}{
		{"Same", `{"job":{"tags":["a","b"],"n":1,"id":"x"}}`, ""},
		{"Renamed", `{"job":{"ID":"x","n":1,"tags":["a","b"]}}`, "$.job.ID: unexpected field"},
		{"Missing", `{"job":{"n":1,"tags":["a","b"]}}`, "$.job.id: missing"},
		{"Retyped", `{"job":{"id":"x","n":"1","tags":["a","b"]}}`, "$.job.n ="},
		{"Shorter", `{"job":{"id":"x","n":1,"tags":["a"]}}`, "$.job.tags: 1 elements, want 2"},
		{"NotAnObject", `{"job":[]}`, "$.job: got []interface {}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var w, g any
			_ = json.Unmarshal([]byte(want), &w)
			_ = json.Unmarshal([]byte(tc.got), &g)
			d := strings.Join(Diff("$", w, g), "\n")
			if (tc.diff == "") != (d == "") || !strings.Contains(d, tc.diff) {
				t.Fatalf("Diff = %q, want it to contain %q", d, tc.diff)
			}
		})
	}
}
