package redisx

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want Target
		str  string // Target.String()
	}{
		{"Plain", "redis://10.0.0.1:6380",
			Target{Scheme: SchemeRedis, Addrs: []string{"10.0.0.1:6380"}},
			"redis://10.0.0.1:6380/0"},
		{"DefaultPortAndDB", "redis://redis/3",
			Target{Scheme: SchemeRedis, Addrs: []string{"redis:6379"}, DB: 3},
			"redis://redis:6379/3"},
		{"PasswordOnly", "redis://:s3cret@h:1/0",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, Password: "s3cret"},
			"redis://:xxxxx@h:1/0"},
		{"UserAndPassword", "redis://alice:s3cret@h:1",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, Username: "alice", Password: "s3cret"},
			"redis://alice:xxxxx@h:1/0"},
		{"LoneUserIsPassword", "redis://s3cret@h:1",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, Password: "s3cret"},
			"redis://:xxxxx@h:1/0"},
		{"HarborAnonymousUser", "redis://anonymous:s3cret@redis:6379/1",
			Target{Scheme: SchemeRedis, Addrs: []string{"redis:6379"}, Password: "s3cret", DB: 1},
			"redis://:xxxxx@redis:6379/1"},
		{"UnescapedSpecialsInPassword", "redis://:p@ss/w#rd?x@h:1/2",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, Password: "p@ss/w#rd?x", DB: 2},
			"redis://:xxxxx@h:1/2"},
		{"EscapedPassword", "redis://:a%23b%40c@h:1",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, Password: "a#b@c"},
			"redis://:xxxxx@h:1/0"},
		{"LiteralPercentPassword", "redis://:50%off@h:1",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, Password: "50%off"},
			"redis://:xxxxx@h:1/0"},
		{"IPv6", "redis://[::1]:7000/1",
			Target{Scheme: SchemeRedis, Addrs: []string{"[::1]:7000"}, DB: 1},
			"redis://[::1]:7000/1"},
		{"IPv6NoPort", "redis://[::1]",
			Target{Scheme: SchemeRedis, Addrs: []string{"[::1]:6379"}},
			"redis://[::1]:6379/0"},
		{"UppercaseSchemeAndSpaces", "  REDIS://h:1/0\n",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}},
			"redis://h:1/0"},
		{"TLS", "rediss://:pw@h:6380/4?skip_verify=true",
			Target{Scheme: SchemeTLS, Addrs: []string{"h:6380"}, Password: "pw", DB: 4, SkipVerify: true},
			"rediss://:xxxxx@h:6380/4?skip_verify=true"},
		{"Unix", "unix:///run/redis/redis.sock?db=5",
			Target{Scheme: SchemeUnix, Addrs: []string{"/run/redis/redis.sock"}, DB: 5},
			"unix:///run/redis/redis.sock?db=5"},
		{"UnixPassword", "unix://:pw@/tmp/r.sock",
			Target{Scheme: SchemeUnix, Addrs: []string{"/tmp/r.sock"}, Password: "pw"},
			"unix://:xxxxx@/tmp/r.sock"},
		{"Sentinel", "redis+sentinel://:pw@s1:26379,s2:26380,s3/mymaster/2",
			Target{Scheme: SchemeSentinel, Addrs: []string{"s1:26379", "s2:26380", "s3:26379"},
				MasterName: "mymaster", Password: "pw", DB: 2},
			"redis+sentinel://:xxxxx@s1:26379,s2:26380,s3:26379/mymaster/2"},
		{"SentinelPassword", "redis+sentinel://s1/m?sentinel_password=spw",
			Target{Scheme: SchemeSentinel, Addrs: []string{"s1:26379"}, MasterName: "m", SentinelPassword: "spw"},
			"redis+sentinel://s1:26379/m?sentinel_password=xxxxx"},
		{"Legacy", "redis:6379",
			Target{Scheme: SchemeRedis, Addrs: []string{"redis:6379"}, Legacy: true},
			"redis://redis:6379/0"},
		{"LegacyFull", "10.0.0.5:6379,100,s3cret,2",
			Target{Scheme: SchemeRedis, Addrs: []string{"10.0.0.5:6379"}, Password: "s3cret", DB: 2, Legacy: true},
			"redis://:xxxxx@10.0.0.5:6379/2"},
		{"LegacyPasswordNoDB", "h:1,100,s3cret",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, Password: "s3cret", Legacy: true},
			"redis://:xxxxx@h:1/0"},
		{"LegacyEmptyPassword", "h:1,100,,3",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, DB: 3, Legacy: true},
			"redis://h:1/3"},
		{"LegacyCommaInPassword", "h:1,100,a,b,c,4",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, Password: "a,b,c", DB: 4, Legacy: true},
			"redis://:xxxxx@h:1/4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseURL(tt.raw)
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.raw, err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("ParseURL(%q) =\n %+v\nwant\n %+v", tt.raw, *got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want []string // substrings of the error
	}{
		{"Empty", " ", []string{"empty Redis URL"}},
		{"UnknownScheme", "http://h:1", []string{`"http://h:1"`, `unknown scheme "http"`}},
		{"MissingHost", "redis://:pw@/0", []string{`"redis://:xxxxx@/0"`, "missing host"}},
		{"BadPort", "redis://:pw@h:abc/0", []string{`"redis://:xxxxx@h:abc/0"`, `port "abc"`}},
		{"PortRange", "redis://h:70000", []string{`port "70000"`}},
		{"BadDB", "redis://:pw@h:1/x", []string{`database "x"`, ":xxxxx@"}},
		{"NegativeDB", "redis://h:1/-1", []string{`database "-1"`}},
		{"Fragment", "redis://h:1/0#x", []string{"fragment", "%23"}},
		{"UnknownParam", "redis://h:1/0?timeout=3", []string{`unknown query parameter "timeout"`}},
		{"SkipVerifyOnPlain", "redis://h:1/0?skip_verify=true", []string{`unknown query parameter "skip_verify"`}},
		{"BadSkipVerify", "rediss://h:1/0?skip_verify=maybe", []string{`skip_verify="maybe"`}},
		{"UnixHost", "unix://host/tmp/s.sock", []string{`unexpected host "host"`}},
		{"UnixNoPath", "unix://", []string{"missing socket path"}},
		{"UnixBadDB", "unix:///tmp/s.sock?db=x", []string{`database "x"`}},
		{"SentinelNoHosts", "redis+sentinel:///m", []string{"missing sentinel addresses"}},
		{"SentinelNoMaster", "redis+sentinel://:pw@s1:1,s2:2", []string{"missing master name", ":xxxxx@"}},
		{"SentinelBadHost", "redis+sentinel://s1:1,,s2:2/m", []string{"sentinel missing host"}},
		{"SentinelBadPort", "redis+sentinel://s1:x/m", []string{`port "x"`}},
		{"SentinelBadDB", "redis+sentinel://s1/m/x", []string{`database "x"`}},
		{"SentinelPasswordRedacted", "redis+sentinel://s1/m/x?sentinel_password=topsecret", []string{"sentinel_password=xxxxx"}},
		{"LegacyBadDB", "h:1,100,topsecret,x", []string{`"h:1,100,xxxxx,x"`, `database "x"`}},
		{"LegacyBadPort", "h:x,100,topsecret", []string{`"h:x,100,xxxxx"`, `port "x"`}},
		{"LegacyNoHost", ":6379", []string{"missing host"}},
		{"BareIPv6", "redis://::1", []string{`address "::1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseURL(tt.raw)
			if err == nil {
				t.Fatalf("ParseURL(%q) = %+v, want an error", tt.raw, got)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "redisx: ") {
				t.Errorf("error %q lacks the package prefix", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			for _, secret := range []string{"pw@", "topsecret", "s3cret"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q leaks the password", msg)
				}
			}
		})
	}
}
