package jsondiff

import (
	"fmt"
	"reflect"
	"sort"
)

// Diff lists the differences between want and got, JSON values decoded
// into map[string]any, []any and scalars; at names the root ("$").
func Diff(at string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T %v, want an object", at, got, got)}
		}
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var diffs []string
		for _, k := range sorted {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing, want %v", at, k, wv))
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s.%s: unexpected field = %v", at, k, gv))
			default:
				diffs = append(diffs, Diff(at+"."+k, wv, gv)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T %v, want an array", at, got, got)}
		}
		if len(g) != len(w) {
			return []string{fmt.Sprintf("%s: %d elements, want %d", at, len(g), len(w))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, Diff(fmt.Sprintf("%s[%d]", at, i), w[i], g[i])...)
		}
		return diffs
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s = %#v, want %#v", at, got, want)}
	}
	return nil
}
