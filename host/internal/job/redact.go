package job

import (
	"encoding/json"
	"strings"
)

// Redacted replaces the value of a secret-looking parameter wherever the
// service shows a job's parameters (stats, listings, hooks).
const Redacted = "[redacted]"

// secretWords mark a parameter key as a secret when the key, in lower
// case, holds one of them: "password", "registry_password",
// "access_secret", "sentinelToken", "Authorization", "access_credential".
var secretWords = []string{
	"password", "passwd", "secret", "token", "authorization", "credential",
	"api_key", "apikey", "private_key", "privatekey", "cookie",
}

// IsSecretKey tells whether a parameter key looks like it holds a secret.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// RedactParameters returns a copy of p in which every value under a
// secret-looking key, at any depth, is Redacted. A string value that holds
// a JSON object or array (Harbor sends a replication's src_resource and
// a scan's scanRequest so) is redacted inside and written back as JSON. p
// itself is not changed; nil stays nil.
func RedactParameters(p Parameters) Parameters {
	if p == nil {
		return nil
	}
	out, _ := redactValue(map[string]any(p)).(map[string]any)
	return out
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if IsSecretKey(k) && val != nil {
				out[k] = Redacted
				continue
			}
			out[k] = redactValue(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = redactValue(val)
		}
		return out
	case string:
		return redactJSONString(x)
	}
	return v
}

// redactJSONString redacts inside a string that holds a JSON object or
// array; any other string is returned as it is.
func redactJSONString(s string) string {
	t := strings.TrimSpace(s)
	if len(t) < 2 || (t[0] != '{' && t[0] != '[') {
		return s
	}
	var inner any
	if err := json.Unmarshal([]byte(t), &inner); err != nil {
		return s
	}
	red := redactValue(inner)
	b, err := json.Marshal(red)
	if err != nil {
		return s
	}
	return string(b)
}

// RedactStats returns st with its parameters redacted, as a copy (st
// itself is not changed); nil stays nil.
func RedactStats(st *Stats) *Stats {
	if st == nil || len(st.Parameters) == 0 {
		return st
	}
	c := *st
	c.Parameters = RedactParameters(st.Parameters)
	return &c
}
