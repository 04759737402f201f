package job_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/host/internal/job"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	generic := func(mut func(*job.RequestJob)) *job.RequestJob {
		r := &job.RequestJob{Name: "DEMO", Metadata: &job.Metadata{Kind: job.Generic}}
		if mut != nil {
			mut(r)
		}
		return r
	}
	hook := func(h string) *job.RequestJob {
		return generic(func(r *job.RequestJob) { r.StatusHook = h })
	}
	tests := []struct {
		name string
		req  *job.RequestJob
		want string // in the error; "" = accepted
	}{
		{"Plain", generic(nil), ""},
		{"NoJob", nil, `no "job" object`},
		{"NoName", generic(func(r *job.RequestJob) { r.Name = "" }), `"job.name" is empty`},
		{"NoMetadata", generic(func(r *job.RequestJob) { r.Metadata = nil }), `"job.metadata" is missing`},
		{"BadKind", generic(func(r *job.RequestJob) { r.Metadata.Kind = "Later" }), `"job.metadata.kind" is "Later"`},
		{"ScheduledNoDelay", generic(func(r *job.RequestJob) { r.Metadata.Kind = job.KindScheduled }), "must be a positive number"},
		{"ScheduledDelay", generic(func(r *job.RequestJob) { r.Metadata.Kind, r.Metadata.ScheduleDelay = job.KindScheduled, 5 }), ""},
		{"ScheduledTooFar", generic(func(r *job.RequestJob) {
			r.Metadata.Kind, r.Metadata.ScheduleDelay = job.KindScheduled, job.MaxScheduleDelay+1
		}), "ten years"},
		{"GenericWithDelay", generic(func(r *job.RequestJob) { r.Metadata.ScheduleDelay = 30 }), "a Generic job does not wait: use kind Scheduled"},
		{"PeriodicWithDelay", generic(func(r *job.RequestJob) {
			r.Metadata.Kind, r.Metadata.CronSpec, r.Metadata.ScheduleDelay = job.Periodic, "0 * * * * *", 30
		}), "a Periodic job does not wait"},
		{"PeriodicNoCron", generic(func(r *job.RequestJob) { r.Metadata.Kind = job.Periodic }), `"job.metadata.cron_spec" is empty`},
		{"HookHTTP", hook("http://core:8080/service/notifications/jobs/adminjob/1"), ""},
		{"HookHTTPSPort", hook("https://10.0.0.1:8443/hook?x=1"), ""},
		{"HookIPv6", hook("http://[::1]:9000/h"), ""},
		{"HookNoScheme", hook("core:8080/hook"), "http:// or https://"},
		{"HookFTP", hook("ftp://core/hook"), "http:// or https://"},
		{"HookNoHost", hook("http:///hook"), "names no host"},
		{"HookOnlyPort", hook("http://:80/hook"), "names no host"},
		{"HookSpace", hook("http://core hook/"), "not a URL"},
		{"HookControl", hook("http://core/\x7f"), "not a URL"},
		{"HookBadPort", hook("http://core:99999/"), "port must be 1 to 65535"},
		{"HookPortZero", hook("http://core:0/"), "port must be 1 to 65535"},
		{"HookTooLong", hook("http://core/" + strings.Repeat("a", job.MaxHookURLLength)), "longer than 2048 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := job.Check(tt.req)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check = %v; want it accepted", err)
				}
				if tt.req.Parameters == nil {
					t.Error("Check left nil parameters; want the empty object")
				}
				return
			}
			var bad *job.BadRequestError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check = %v; want a bad request with %q", err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("the message is %d bytes long: it must clip what it echoes", len(err.Error()))
			}
		})
	}
}
