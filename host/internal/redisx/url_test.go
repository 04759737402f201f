package redisx

import (
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seconds returns a pointer to n seconds, for Target.IdleTimeout.
func seconds(n int) *time.Duration {
	d := time.Duration(n) * time.Second
	return &d
}

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
		{"HarborInstaller", "redis://redis:6379/2?idle_timeout_seconds=30",
			Target{Scheme: SchemeRedis, Addrs: []string{"redis:6379"}, DB: 2, IdleTimeout: seconds(30)},
			"redis://redis:6379/2?idle_timeout_seconds=30"},
		{"HarborInstallerExternalRedis", "redis://anonymous:s3cret@10.0.0.5:6379/2?idle_timeout_seconds=30",
			Target{Scheme: SchemeRedis, Addrs: []string{"10.0.0.5:6379"}, Password: "s3cret", DB: 2, IdleTimeout: seconds(30)},
			"redis://:xxxxx@10.0.0.5:6379/2?idle_timeout_seconds=30"},
		{"IdleTimeoutZeroNeverCloses", "redis://h:1/0?idle_timeout_seconds=0",
			Target{Scheme: SchemeRedis, Addrs: []string{"h:1"}, IdleTimeout: seconds(0)},
			"redis://h:1/0?idle_timeout_seconds=0"},
		{"IdleTimeoutWithTLS", "rediss://h:1/0?skip_verify=true&idle_timeout_seconds=45",
			Target{Scheme: SchemeTLS, Addrs: []string{"h:1"}, SkipVerify: true, IdleTimeout: seconds(45)},
			"rediss://h:1/0?skip_verify=true&idle_timeout_seconds=45"},
		{"IdleTimeoutOnUnix", "unix:///run/redis.sock?db=2&idle_timeout_seconds=60",
			Target{Scheme: SchemeUnix, Addrs: []string{"/run/redis.sock"}, DB: 2, IdleTimeout: seconds(60)},
			"unix:///run/redis.sock?db=2&idle_timeout_seconds=60"},
		{"HarborSentinel", "redis+sentinel://:s3cret@s1:26379,s2:26379/mymaster/2?idle_timeout_seconds=30",
			Target{Scheme: SchemeSentinel, Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "mymaster", Password: "s3cret", DB: 2, IdleTimeout: seconds(30)},
			"redis+sentinel://:xxxxx@s1:26379,s2:26379/mymaster/2?idle_timeout_seconds=30"},
		{"SentinelPasswordAndIdleTimeout", "redis+sentinel://s1/m?sentinel_password=spw&idle_timeout_seconds=5",
			Target{Scheme: SchemeSentinel, Addrs: []string{"s1:26379"}, MasterName: "m", SentinelPassword: "spw", IdleTimeout: seconds(5)},
			"redis+sentinel://s1:26379/m?sentinel_password=xxxxx&idle_timeout_seconds=5"},
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
		{"UnknownParam", "redis://h:1/0?timeout=3", []string{`unknown query parameter "timeout" (redis URLs take idle_timeout_seconds)`}},
		{"UnknownParams", "redis://h:1/0?zeta=1&idle_timeout_seconds=3&alpha=2",
			[]string{`unknown query parameters "alpha", "zeta" (redis URLs take idle_timeout_seconds)`}},
		{"HarborParamMisspelt", "redis://h:1/2?idle_timeout_second=30", []string{`unknown query parameter "idle_timeout_second"`}},
		{"SentinelUnknownParam", "redis+sentinel://s1/m?max_idle=3",
			[]string{`unknown query parameter "max_idle" (redis+sentinel URLs take idle_timeout_seconds, sentinel_password)`}},
		{"BadIdleTimeout", "redis://:pw@h:1/2?idle_timeout_seconds=30s", []string{`idle_timeout_seconds="30s" is not a whole number of seconds`, ":xxxxx@"}},
		{"NegativeIdleTimeout", "redis://h:1/2?idle_timeout_seconds=-1", []string{`idle_timeout_seconds="-1"`}},
		{"HugeIdleTimeout", "redis://h:1/2?idle_timeout_seconds=99999999999", []string{`idle_timeout_seconds="99999999999"`}},
		{"IdleTimeoutTwice", "redis://h:1/2?idle_timeout_seconds=1&idle_timeout_seconds=2", []string{`"idle_timeout_seconds" given 2 times`}},
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
		{"LegacyBadDB", "h:1,100,topsecret,x", []string{`"h:1,100,xxxxx"`, "the database, is not a number"}},
		{"LegacyBadPort", "h:x,100,topsecret", []string{`"h:x,100,xxxxx"`, `port "x"`}},
		{"LegacyNoHost", ":6379", []string{"missing host"}},
		{"LegacyUserInfo", ":topsecret@h:1", []string{`":xxxxx@h:1"`, "address holds an '@'"}},
		{"NoScheme", "h:1,100,top://secret,0", []string{`"xxxxx"`, `before "://" is no scheme`}},
		{"EmptyScheme", "://h:1", []string{`missing scheme before "://"`}},
		{"BadQueryEscape", "redis+sentinel://s1/m?sentinel_password=top%zzsecret", []string{"sentinel_password=xxxxx", "bad percent-encoding"}},
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

// redactCases are every form of the grammar with its passwords, valid or not.
// Each password holds "PW" in every part that a separator (',', '@', ':', '/',
// ';', '#', '?') could split off, so that no part of one can show unnoticed.
var redactCases = []struct {
	name    string
	raw     string
	want    string   // Redact(raw)
	ok      bool     // ParseURL accepts raw
	secrets []string // must show nowhere; "PW" is checked too
}{
	{"NoPassword", "redis://redis:6379/0", "redis://redis:6379/0", true, nil},
	{"Empty", "", "", false, nil},
	{"PasswordOnly", "redis://:s3cret-PW-1@redis:6379/0", "redis://:xxxxx@redis:6379/0", true, []string{"s3cret-PW-1"}},
	{"UserAndPassword", "redis://berth:s3cret-PW-2@redis:6379/1", "redis://berth:xxxxx@redis:6379/1", true, []string{"s3cret-PW-2"}},
	{"LoneUserInfo", "redis://s3cret-PW-3@redis:6379", "redis://xxxxx@redis:6379", true, []string{"s3cret-PW-3"}},
	{"HarborAnonymous", "redis://anonymous:s3cret-PW-4@redis:6379/1", "redis://anonymous:xxxxx@redis:6379/1", true, []string{"s3cret-PW-4"}},
	{"EmptyPassword", "redis://berth:@redis:6379", "redis://berth:@redis:6379", true, nil},
	{"TLS", "rediss://:s3cret-PW-5@redis:6380/2?skip_verify=true", "rediss://:xxxxx@redis:6380/2?skip_verify=true", true, []string{"s3cret-PW-5"}},
	{"Unix", "unix://:s3cret-PW-6@/run/redis/redis.sock?db=3", "unix://:xxxxx@/run/redis/redis.sock?db=3", true, []string{"s3cret-PW-6"}},
	{"UnixLoneUserInfo", "unix://s3cret-PW-7@/run/redis.sock", "unix://xxxxx@/run/redis.sock", true, []string{"s3cret-PW-7"}},
	{"Sentinel", "redis+sentinel://:s3cret-PW-8@s1:26379,s2/mymaster/1?sentinel_password=s3ntinel-PW-9",
		"redis+sentinel://:xxxxx@s1:26379,s2/mymaster/1?sentinel_password=xxxxx", true, []string{"s3cret-PW-8", "s3ntinel-PW-9"}},
	{"SentinelPasswordOnly", "redis+sentinel://s1/m?sentinel_password=s3ntinel-PW-10",
		"redis+sentinel://s1/m?sentinel_password=xxxxx", true, []string{"s3ntinel-PW-10"}},
	{"SentinelPasswordEscapedName", "redis+sentinel://s1/m?sentinel%5Fpassword=s3ntinel-PW-11",
		"redis+sentinel://s1/m?sentinel%5Fpassword=xxxxx", true, []string{"s3ntinel-PW-11"}},
	{"PercentEncodedPassword", "redis://:s3cret%40PW%3A12@redis:6379", "redis://:xxxxx@redis:6379", true,
		[]string{"s3cret%40PW%3A12", "s3cret@PW:12"}},
	{"AtAndColonInPassword", "redis://:s3cret@PW:13@redis:6379/0", "redis://:xxxxx@redis:6379/0", true, []string{"s3cret@PW:13"}},
	{"AtAndColonWithUser", "redis://berth:PW-14:PW@PW@redis:6379", "redis://berth:xxxxx@redis:6379", true, []string{"PW-14:PW@PW"}},
	{"LoneUserInfoWithAt", "redis://PW-15@PW@redis:6379", "redis://xxxxx@redis:6379", true, []string{"PW-15@PW"}},
	{"UnescapedSpecials", "redis://:PW-16/PW?PW#PW@redis:6379/2", "redis://:xxxxx@redis:6379/2", true, []string{"PW-16/PW?PW#PW"}},
	{"LiteralPercent", "redis://:50%PW-17@redis:6379", "redis://:xxxxx@redis:6379", true, []string{"50%PW-17"}},
	{"SurroundingSpace", "  redis://:s3cret-PW-18@redis:6379\n", "redis://:xxxxx@redis:6379", true, []string{"s3cret-PW-18"}},
	{"Legacy", "redis:6379,100,s3cret-PW-19,2", "redis:6379,100,xxxxx,2", true, []string{"s3cret-PW-19"}},
	{"LegacyNoDB", "redis:6379,100,s3cret-PW-20", "redis:6379,100,xxxxx", true, []string{"s3cret-PW-20"}},
	{"LegacyNoPassword", "redis:6379,100,,2", "redis:6379,100,,2", true, nil},
	{"LegacyCommasInPassword", "redis:6379,100,PW-21a,PW-21b,PW-21c,3", "redis:6379,100,xxxxx,3", true, []string{"PW-21a,PW-21b,PW-21c"}},
	{"LegacyOneCommaInPassword", "10.0.0.5:6379,100,PW-22a,PW-22b,0", "10.0.0.5:6379,100,xxxxx,0", true, []string{"PW-22a,PW-22b"}},
	{"LegacyAtAndColonInPassword", "redis:6379,100,PW-23@PW:PW,0", "redis:6379,100,xxxxx,0", true, []string{"PW-23@PW:PW"}},
	{"LegacyWeightNotNumber", "redis:6379,s3cret-PW-24", "redis:6379,xxxxx", true, []string{"s3cret-PW-24"}},
	{"HarborInstaller", "redis://anonymous:s3cret-PW-25@redis:6379/2?idle_timeout_seconds=30",
		"redis://anonymous:xxxxx@redis:6379/2?idle_timeout_seconds=30", true, []string{"s3cret-PW-25"}},
	{"HarborSentinel", "redis+sentinel://:s3cret-PW-26@s1:26379,s2:26379/mymaster/2?idle_timeout_seconds=30&sentinel_password=s3ntinel-PW-27",
		"redis+sentinel://:xxxxx@s1:26379,s2:26379/mymaster/2?idle_timeout_seconds=30&sentinel_password=xxxxx", true,
		[]string{"s3cret-PW-26", "s3ntinel-PW-27"}},
	{"IdleTimeoutAfterSentinelPassword", "redis+sentinel://s1/m?sentinel_password=s3ntinel-PW-28&idle_timeout_seconds=30",
		"redis+sentinel://s1/m?sentinel_password=xxxxx&idle_timeout_seconds=30", true, []string{"s3ntinel-PW-28"}},

	{"IssueExample", "redis://s3cret-PW-30@redis:6379/x", "redis://xxxxx@redis:6379/x", false, []string{"s3cret-PW-30"}},
	{"BadPort", "redis://:s3cret-PW-31@redis:port/0", "redis://:xxxxx@redis:port/0", false, []string{"s3cret-PW-31"}},
	{"PortOutOfRange", "rediss://berth:s3cret-PW-32@redis:70000", "rediss://berth:xxxxx@redis:70000", false, []string{"s3cret-PW-32"}},
	{"EmptyPort", "redis://s3cret-PW-33@redis:", "redis://xxxxx@redis:", false, []string{"s3cret-PW-33"}},
	{"UnknownScheme", "http://:s3cret-PW-34@redis:6379", "http://:xxxxx@redis:6379", false, []string{"s3cret-PW-34"}},
	{"UnknownSchemeLoneUserInfo", "mysql://s3cret-PW-35@db", "mysql://xxxxx@db", false, []string{"s3cret-PW-35"}},
	{"NoScheme", "redis:6379,100,PW-36://PW,0", "xxxxx", false, []string{"PW-36://PW"}},
	{"EmptyScheme", "://:s3cret-PW-37@redis", "://:xxxxx@redis", false, []string{"s3cret-PW-37"}},
	{"BadDB", "redis://:s3cret-PW-38@redis:6379/first", "redis://:xxxxx@redis:6379/first", false, []string{"s3cret-PW-38"}},
	{"UnixBadDB", "unix://:s3cret-PW-39@/tmp/r.sock?db=-1", "unix://:xxxxx@/tmp/r.sock?db=-1", false, []string{"s3cret-PW-39"}},
	{"SentinelBadDB", "redis+sentinel://:s3cret-PW-40@s1/m/x?sentinel_password=s3ntinel-PW-41",
		"redis+sentinel://:xxxxx@s1/m/x?sentinel_password=xxxxx", false, []string{"s3cret-PW-40", "s3ntinel-PW-41"}},
	{"SentinelBadPort", "redis+sentinel://s1:x/m?sentinel_password=s3ntinel-PW-42",
		"redis+sentinel://s1:x/m?sentinel_password=xxxxx", false, []string{"s3ntinel-PW-42"}},
	{"Fragment", "redis://:s3cret-PW-43@redis:6379/0#frag", "redis://:xxxxx@redis:6379/0#frag", false, []string{"s3cret-PW-43"}},
	{"FragmentInSentinelPassword", "redis+sentinel://s1/m?sentinel_password=PW-44#PW",
		"redis+sentinel://s1/m?sentinel_password=xxxxx", false, []string{"PW-44#PW"}},
	{"PasswordAfterFragment", "redis+sentinel://s1/m?db=1#sentinel_password=PW-45",
		"redis+sentinel://s1/m?db=1#sentinel_password=xxxxx", false, []string{"PW-45"}},
	{"BadEscapeInSentinelPassword", "redis+sentinel://s1/m?sentinel_password=PW-46%PW",
		"redis+sentinel://s1/m?sentinel_password=xxxxx", false, []string{"PW-46%PW"}},
	{"SemicolonInSentinelPassword", "redis+sentinel://s1/m?sentinel_password=PW-47;PW",
		"redis+sentinel://s1/m?sentinel_password=xxxxx", false, []string{"PW-47;PW"}},
	{"SentinelPasswordTwice", "redis+sentinel://s1/m?sentinel_password=PW-48a&sentinel_password=PW-48b",
		"redis+sentinel://s1/m?sentinel_password=xxxxx&sentinel_password=xxxxx", false, []string{"PW-48a", "PW-48b"}},
	{"SentinelPasswordUpperCase", "redis+sentinel://s1/m?Sentinel_Password=PW-49",
		"redis+sentinel://s1/m?Sentinel_Password=xxxxx", false, []string{"PW-49"}},
	{"PasswordParameter", "redis://redis:6379/0?password=s3cret-PW-50", "redis://redis:6379/0?password=xxxxx", false, []string{"s3cret-PW-50"}},
	{"AnyPasswordParameter", "rediss://redis:6380/0?skip_verify=true&AUTH_PASSWORD=s3cret-PW-51",
		"rediss://redis:6380/0?skip_verify=true&AUTH_PASSWORD=xxxxx", false, []string{"s3cret-PW-51"}},
	{"MissingHost", "redis://:s3cret-PW-52@/0", "redis://:xxxxx@/0", false, []string{"s3cret-PW-52"}},
	{"UnixHost", "unix://:s3cret-PW-53@host/tmp/s.sock", "unix://:xxxxx@host/tmp/s.sock", false, []string{"s3cret-PW-53"}},
	{"BareIPv6", "redis://:s3cret-PW-54@::1", "redis://:xxxxx@::1", false, []string{"s3cret-PW-54"}},
	{"BadMasterName", "redis+sentinel://:s3cret-PW-55@s1/m%zz", "redis+sentinel://:xxxxx@s1/m%zz", false, []string{"s3cret-PW-55"}},
	{"BadSkipVerify", "rediss://:s3cret-PW-56@h:1/0?skip_verify=maybe", "rediss://:xxxxx@h:1/0?skip_verify=maybe", false, []string{"s3cret-PW-56"}},
	{"LegacyBadDB", "redis:6379,100,s3cret-PW-57,db1", "redis:6379,100,xxxxx", false, []string{"s3cret-PW-57"}},
	{"LegacyCommasNoDB", "redis:6379,100,PW-58a,PW-58b", "redis:6379,100,xxxxx", false, []string{"PW-58a,PW-58b", "PW-58b"}},
	{"LegacyBadPort", "redis:63x9,100,s3cret-PW-59", "redis:63x9,100,xxxxx", false, []string{"s3cret-PW-59"}},
	{"LegacyUserInfo", ":s3cret-PW-60@redis:6379", ":xxxxx@redis:6379", false, []string{"s3cret-PW-60"}},
	{"LegacyLoneUserInfo", "s3cret-PW-61@redis:6379,100,,0", "xxxxx@redis:6379,100,,0", false, []string{"s3cret-PW-61"}},
	{"SentinelPasswordWithAmpersand", "redis+sentinel://s1/m?sentinel_password=PW-63&PW&PW",
		"redis+sentinel://s1/m?sentinel_password=xxxxx", false, []string{"PW-63&PW&PW"}},
	{"AmpersandThenParameter", "redis+sentinel://s1/m?sentinel_password=PW-64&PW&db=1",
		"redis+sentinel://s1/m?sentinel_password=xxxxx&db=1", false, []string{"PW-64&PW"}},
	{"SchemeWithoutColon", "redis//:s3cret-PW-62@redis:6379", "redis//:xxxxx@redis:6379", false, []string{"s3cret-PW-62"}},
	{"BadIdleTimeout", "redis://:s3cret-PW-65@redis:6379/2?idle_timeout_seconds=soon",
		"redis://:xxxxx@redis:6379/2?idle_timeout_seconds=soon", false, []string{"s3cret-PW-65"}},
	{"UnknownParamBesideHarbors", "rediss://berth:s3cret-PW-66@redis:6380/2?idle_timeout_seconds=30&max_active=5",
		"rediss://berth:xxxxx@redis:6380/2?idle_timeout_seconds=30&max_active=5", false, []string{"s3cret-PW-66"}},
	{"IdleTimeoutHoldingPassword", "redis+sentinel://s1/m?idle_timeout_seconds=30&sentinel_password=PW-67&PW",
		"redis+sentinel://s1/m?idle_timeout_seconds=30&sentinel_password=xxxxx", false, []string{"PW-67&PW"}},
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range redactCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hidden := func(what, text string) {
				t.Helper()
				for _, s := range append(tc.secrets, "PW") {
					if strings.Contains(text, s) {
						t.Errorf("%s = %q shows %q", what, text, s)
					}
				}
			}
			got := Redact(tc.raw)
			if got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.raw, got, tc.want)
			}
			hidden("Redact", got)
			target, err := ParseURL(tc.raw)
			switch {
			case err != nil:
				hidden("ParseURL error", err.Error())
				if tc.ok {
					t.Errorf("ParseURL(%q): %v, want it accepted", tc.raw, err)
				}
				if want := strconv.Quote(tc.want); tc.raw != "" && !strings.Contains(err.Error(), want) {
					t.Errorf("ParseURL error %q does not name the URL as %s", err, want)
				}
			case !tc.ok:
				t.Errorf("ParseURL(%q) = %+v, want an error", tc.raw, target)
			default:
				hidden("Target.String()", target.String()) // what Open logs
			}
		})
	}
}

// FuzzRedact checks that Redact never panics and, for a URL that parses,
// shows neither password where raw holds it once (else the text may be a host).
func FuzzRedact(f *testing.F) {
	for _, tc := range redactCases {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := Redact(raw)
		target, err := ParseURL(raw)
		if err != nil {
			return
		}
		bare := *target
		bare.Password, bare.SentinelPassword = "", ""
		for _, pw := range []string{target.Password, target.SentinelPassword} {
			if len(pw) < 4 || strings.Count(raw, pw) != 1 || strings.Contains(redacted, pw) {
				continue
			}
			if strings.Contains(got, pw) {
				t.Errorf("Redact(%q) = %q shows %q", raw, got, pw)
			}
			if s := target.String(); strings.Contains(s, pw) && !strings.Contains(bare.String(), pw) {
				t.Errorf("ParseURL(%q).String() = %q shows %q", raw, s, pw)
			}
		}
	})
}

// HarborURL gives the URL Harbor's job service reports, which core's
// dashboard parses: Harbor's legacy form translated as Harbor translates
// it, anything else unchanged.
func TestHarborURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:6379", "redis://127.0.0.1:6379"},
		{"redis:6379,100", "redis://redis:6379"},
		{"redis:6379,100,s3cret", "redis://arbitrary_username:s3cret@redis:6379"},
		{"redis:6379,100,s3cret,2", "redis://arbitrary_username:s3cret@redis:6379/2"},
		{"redis:6379,100,,3", "redis://redis:6379/3"},
		{"redis:6379,100,p@ss:w/rd,1", "redis://arbitrary_username:p%40ss%3Aw%2Frd@redis:6379/1"},
		{"redis://:pw@redis:6379/2?idle_timeout_seconds=30", "redis://:pw@redis:6379/2?idle_timeout_seconds=30"},
		{"redis+sentinel://s1:26379,s2:26379/mymaster/1", "redis+sentinel://s1:26379,s2:26379/mymaster/1"},
		{"unix:///var/run/redis.sock", "unix:///var/run/redis.sock"},
		{"", ""},
	} {
		got := HarborURL(tc.in)
		if got != tc.want {
			t.Errorf("HarborURL(%q) = %q, want %q", tc.in, got, tc.want)
			continue
		}
		if tc.in == "" {
			continue
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme == "" || u.Host == "" && u.Scheme != "unix" {
			t.Errorf("HarborURL(%q) = %q does not parse as core parses it: %v", tc.in, got, err)
		}
	}
}
