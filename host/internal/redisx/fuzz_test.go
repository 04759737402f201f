package redisx

import (
	"strings"
	"testing"
)

// FuzzParseURL: no input panics ParseURL or Redact, a URL that parses has
// an address, and Redact never shows the password ParseURL found.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://:pw@127.0.0.1:6379/2", "redis://user:pw@host:1?idle_timeout_seconds=30",
		"rediss://pw@host:6380?skip_verify=true", "unix:///run/redis.sock?db=3",
		"redis+sentinel://:pw@h1:26379,h2:26379/mymaster/1?sentinel_password=sp",
		"host:6379,100,pw,2", "host:6379", "redis://[::1]:6379", "redis://%zz@h:1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		red := Redact(raw)
		tg, err := ParseURL(raw)
		if err != nil {
			return
		}
		if len(tg.Addrs) == 0 {
			t.Fatalf("ParseURL(%q) parsed with no address", raw)
		}
		// A password short enough to occur by chance elsewhere in the URL
		// proves nothing.
		if pw := tg.Password; len(pw) >= 4 && strings.Contains(red, pw) && !strings.Contains(strings.Replace(raw, pw, "", 1), pw) {
			t.Fatalf("Redact(%q) = %q shows the password %q", raw, red, pw)
		}
	})
}
