package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/host/internal/redisx"
)

// redisURLCases are every form of the Redis URL grammar with its passwords,
// valid or not (redisx's url_test.go has the same forms). Each password holds
// "PW" in every part that a separator (',', '@', ':', '/', ';', '#', '?')
// could split off, so that no part of one can show unnoticed.
var redisURLCases = []struct {
	name    string
	url     string
	ok      bool     // Validate accepts it
	secrets []string // must show nowhere; "PW" is checked too
}{
	{"Empty", "", true, nil}, // the embedded backend
	{"Blank", "  ", false, nil},
	{"NoPassword", "redis://redis:6379/0", true, nil},
	{"PasswordOnly", "redis://:s3cret-PW-1@redis:6379/0", true, []string{"s3cret-PW-1"}},
	{"UserAndPassword", "redis://berth:s3cret-PW-2@redis:6379/1", true, []string{"s3cret-PW-2"}},
	{"LoneUserInfo", "redis://s3cret-PW-3@redis:6379", true, []string{"s3cret-PW-3"}},
	{"HarborAnonymous", "redis://anonymous:s3cret-PW-4@redis:6379/1", true, []string{"s3cret-PW-4"}},
	{"TLS", "rediss://:s3cret-PW-5@redis:6380/2?skip_verify=true", true, []string{"s3cret-PW-5"}},
	{"Unix", "unix://:s3cret-PW-6@/run/redis/redis.sock?db=3", true, []string{"s3cret-PW-6"}},
	{"UnixLoneUserInfo", "unix://s3cret-PW-7@/run/redis.sock", true, []string{"s3cret-PW-7"}},
	{"Sentinel", "redis+sentinel://:s3cret-PW-8@s1:26379,s2/mymaster/1?sentinel_password=s3ntinel-PW-9", true,
		[]string{"s3cret-PW-8", "s3ntinel-PW-9"}},
	{"SentinelPasswordOnly", "redis+sentinel://s1/m?sentinel_password=s3ntinel-PW-10", true, []string{"s3ntinel-PW-10"}},
	{"SentinelPasswordEscapedName", "redis+sentinel://s1/m?sentinel%5Fpassword=s3ntinel-PW-11", true, []string{"s3ntinel-PW-11"}},
	{"PercentEncodedPassword", "redis://:s3cret%40PW%3A12@redis:6379", true, []string{"s3cret%40PW%3A12", "s3cret@PW:12"}},
	{"AtAndColonInPassword", "redis://:s3cret@PW:13@redis:6379/0", true, []string{"s3cret@PW:13"}},
	{"AtAndColonWithUser", "redis://berth:PW-14:PW@PW@redis:6379", true, []string{"PW-14:PW@PW"}},
	{"LoneUserInfoWithAt", "redis://PW-15@PW@redis:6379", true, []string{"PW-15@PW"}},
	{"UnescapedSpecials", "redis://:PW-16/PW?PW#PW@redis:6379/2", true, []string{"PW-16/PW?PW#PW"}},
	{"LiteralPercent", "redis://:50%PW-17@redis:6379", true, []string{"50%PW-17"}},
	{"Legacy", "redis:6379,100,s3cret-PW-19,2", true, []string{"s3cret-PW-19"}},
	{"LegacyNoDB", "redis:6379,100,s3cret-PW-20", true, []string{"s3cret-PW-20"}},
	{"LegacyCommasInPassword", "redis:6379,100,PW-21a,PW-21b,PW-21c,3", true, []string{"PW-21a,PW-21b,PW-21c"}},
	{"LegacyOneCommaInPassword", "10.0.0.5:6379,100,PW-22a,PW-22b,0", true, []string{"PW-22a,PW-22b"}},
	{"LegacyAtAndColonInPassword", "redis:6379,100,PW-23@PW:PW,0", true, []string{"PW-23@PW:PW"}},
	{"LegacyWeightNotNumber", "redis:6379,s3cret-PW-24", true, []string{"s3cret-PW-24"}},
	{"HarborInstaller", "redis://anonymous:s3cret-PW-25@redis:6379/2?idle_timeout_seconds=30", true, []string{"s3cret-PW-25"}},
	{"HarborSentinel", "redis+sentinel://:s3cret-PW-26@s1:26379,s2:26379/mymaster/2?idle_timeout_seconds=30&sentinel_password=s3ntinel-PW-27", true,
		[]string{"s3cret-PW-26", "s3ntinel-PW-27"}},
	{"IdleTimeoutAfterSentinelPassword", "redis+sentinel://s1/m?sentinel_password=s3ntinel-PW-28&idle_timeout_seconds=30", true, []string{"s3ntinel-PW-28"}},

	{"IssueExample", "redis://s3cret-PW-30@redis:6379/x", false, []string{"s3cret-PW-30"}},
	{"BadPort", "redis://:s3cret-PW-31@redis:port/0", false, []string{"s3cret-PW-31"}},
	{"PortOutOfRange", "rediss://berth:s3cret-PW-32@redis:70000", false, []string{"s3cret-PW-32"}},
	{"EmptyPort", "redis://s3cret-PW-33@redis:", false, []string{"s3cret-PW-33"}},
	{"UnknownScheme", "http://:s3cret-PW-34@redis:6379", false, []string{"s3cret-PW-34"}},
	{"UnknownSchemeLoneUserInfo", "mysql://s3cret-PW-35@db", false, []string{"s3cret-PW-35"}},
	{"NoScheme", "redis:6379,100,PW-36://PW,0", false, []string{"PW-36://PW"}},
	{"BadDB", "redis://:s3cret-PW-38@redis:6379/first", false, []string{"s3cret-PW-38"}},
	{"UnixBadDB", "unix://:s3cret-PW-39@/tmp/r.sock?db=-1", false, []string{"s3cret-PW-39"}},
	{"SentinelBadDB", "redis+sentinel://:s3cret-PW-40@s1/m/x?sentinel_password=s3ntinel-PW-41", false,
		[]string{"s3cret-PW-40", "s3ntinel-PW-41"}},
	{"SentinelBadPort", "redis+sentinel://s1:x/m?sentinel_password=s3ntinel-PW-42", false, []string{"s3ntinel-PW-42"}},
	{"Fragment", "redis://:s3cret-PW-43@redis:6379/0#frag", false, []string{"s3cret-PW-43"}},
	{"FragmentInSentinelPassword", "redis+sentinel://s1/m?sentinel_password=PW-44#PW", false, []string{"PW-44#PW"}},
	{"BadEscapeInSentinelPassword", "redis+sentinel://s1/m?sentinel_password=PW-46%PW", false, []string{"PW-46%PW"}},
	{"SemicolonInSentinelPassword", "redis+sentinel://s1/m?sentinel_password=PW-47;PW", false, []string{"PW-47;PW"}},
	{"SentinelPasswordUpperCase", "redis+sentinel://s1/m?Sentinel_Password=PW-49", false, []string{"PW-49"}},
	{"PasswordParameter", "redis://redis:6379/0?password=s3cret-PW-50", false, []string{"s3cret-PW-50"}},
	{"MissingHost", "redis://:s3cret-PW-52@/0", false, []string{"s3cret-PW-52"}},
	{"UnixHost", "unix://:s3cret-PW-53@host/tmp/s.sock", false, []string{"s3cret-PW-53"}},
	{"LegacyBadDB", "redis:6379,100,s3cret-PW-57,db1", false, []string{"s3cret-PW-57"}},
	{"LegacyCommasNoDB", "redis:6379,100,PW-58a,PW-58b", false, []string{"PW-58a,PW-58b", "PW-58b"}},
	{"LegacyBadPort", "redis:63x9,100,s3cret-PW-59", false, []string{"s3cret-PW-59"}},
	{"LegacyUserInfo", ":s3cret-PW-60@redis:6379", false, []string{"s3cret-PW-60"}},
	{"LegacyLoneUserInfo", "s3cret-PW-61@redis:6379,100,,0", false, []string{"s3cret-PW-61"}},
	{"SentinelPasswordWithAmpersand", "redis+sentinel://s1/m?sentinel_password=PW-63&PW&PW", false, []string{"PW-63&PW&PW"}},
	{"SchemeWithoutColon", "redis//:s3cret-PW-62@redis:6379", false, []string{"s3cret-PW-62"}},
	{"BadIdleTimeout", "redis://:s3cret-PW-65@redis:6379/2?idle_timeout_seconds=soon", false, []string{"s3cret-PW-65"}},
	{"UnknownParamBesideHarbors", "rediss://berth:s3cret-PW-66@redis:6380/2?idle_timeout_seconds=30&max_active=5", false, []string{"s3cret-PW-66"}},
	{"IdleTimeoutHoldingPassword", "redis+sentinel://s1/m?idle_timeout_seconds=30&sentinel_password=PW-67&PW", false, []string{"PW-67&PW"}},
}

// TestRedisURLPasswordsHidden feeds every form through Validate and Load and
// checks that config accepts exactly what redisx.ParseURL accepts, that a
// refusal names the key (and the env variable), and that no password shows
// in an error, in RedactedRedisURL, in Warnings, or in the target the host
// logs when it connects.
func TestRedisURLPasswordsHidden(t *testing.T) {
	t.Parallel()
	const key = "worker_pool.redis_pool.redis_url"
	for _, tc := range redisURLCases {
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
			shown := strconv.Quote(redisx.Redact(tc.url))
			// checkErr checks the error of one way in; prefix starts its one problem.
			checkErr := func(how string, err error, prefix string) {
				t.Helper()
				if tc.ok {
					if err != nil {
						t.Errorf("%s: %v, want no error", how, err)
					}
					return
				}
				if err == nil {
					t.Errorf("%s: no error, want one for %s", how, key)
					return
				}
				hidden(how+" error", err.Error())
				hidden(how+" error %+v", fmt.Sprintf("%+v", err))
				ps := problems(err)
				var le *loadError
				if errors.As(err, &le) {
					ps = problems(le.err)
				}
				if len(ps) != 1 {
					t.Fatalf("%s gave %d problems, want 1: %v", how, len(ps), err)
				}
				if msg := ps[0].Error(); !strings.HasPrefix(msg, prefix) {
					t.Errorf("%s: problem %q does not start with %q", how, msg, prefix)
				} else if !strings.Contains(msg, shown) && strings.TrimSpace(tc.url) != "" {
					t.Errorf("%s: problem %q does not name the URL as %s", how, msg, shown)
				}
			}

			c := Default()
			c.WorkerPool.RedisPool.RedisURL = tc.url
			err := c.Validate()
			checkErr("Validate", err, key+": ")
			if _, perr := redisx.ParseURL(tc.url); tc.url != "" && (err == nil) != (perr == nil) {
				t.Errorf("Validate() = %v but redisx.ParseURL: %v; config must accept what redisx does", err, perr)
			}
			hidden("RedactedRedisURL()", c.RedactedRedisURL())
			hidden("Warnings()", strings.Join(c.Warnings(), "\n"))

			loaded, err := Load("", env("JOB_SERVICE_POOL_REDIS_URL", tc.url))
			checkErr("Load with env", err, key+" (from env JOB_SERVICE_POOL_REDIS_URL): ")
			if err == nil {
				hidden("RedactedRedisURL() after Load", loaded.RedactedRedisURL())
			}

			// idle_timeout_second beside the URL: a URL with Harbor's
			// idle_timeout_seconds makes Load warn.
			doc, err := yaml.Marshal(map[string]any{"worker_pool": map[string]any{"redis_pool": map[string]any{
				"redis_url": tc.url, "idle_timeout_second": 7}}})
			if err != nil {
				t.Fatal(err)
			}
			loaded, err = Load(writeYAML(t, string(doc)), nil)
			checkErr("Load with file", err, key+": ")
			if err == nil {
				hidden("Warnings() after Load", strings.Join(loaded.Warnings(), "\n"))
			}

			if target, err := redisx.ParseURL(tc.url); err == nil {
				hidden("the target logged at connect", target.String())
			}
		})
	}
}
