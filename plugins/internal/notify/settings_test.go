package notify

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

func TestTheTimeoutIsHarborsEnvOrTheSetting(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	for _, tc := range []struct {
		name     string
		env      env
		settings map[string]any
	}{
		{"Env", env{envTimeout: "1"}, allowLoopback},
		{"Setting", env{envTimeout: "3600"}, map[string]any{"allowed_networks": []string{"127.0.0.0/8"}, "timeout_seconds": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			res := newTestPlugin(tc.env).run(t, map[string]any{"payload": "{}", "address": rc.srv.URL}, tc.settings)
			took := time.Since(start)
			if res.Kind != sdktest.Failed || !strings.Contains(res.Err.Error(), "Client.Timeout exceeded") {
				t.Fatalf("run = %s %v", res.Kind, res.Err)
			}
			if took < time.Second || took > 20*time.Second {
				t.Fatalf("the run took %v with a 1 s timeout", took)
			}
		})
	}
}

func TestResolvedTimeoutAndExcerpt(t *testing.T) {
	t.Parallel()
	zero, ten := 0, 10
	tests := []struct {
		name      string
		env       env
		settings  Settings
		timeout   time.Duration
		excerpt   int
		beforeToo bool // Load before Configure gives the same
	}{
		{"Defaults", env{}, Settings{}, 3 * time.Second, 512, true},
		{"Env", env{envTimeout: " 7 "}, Settings{}, 7 * time.Second, 512, true},
		{"EnvZeroIsNone", env{envTimeout: "0"}, Settings{}, 0, 512, true},
		{"SettingWins", env{envTimeout: "7"}, Settings{TimeoutSeconds: &ten, ExcerptBytes: &zero}, 10 * time.Second, 0, false},
		{"SettingZero", env{envTimeout: "7"}, Settings{TimeoutSeconds: &zero, ExcerptBytes: &ten}, 0, 10, false},
	}
	for _, tc := range tests {
		h := &Holder{Lookup: tc.env.lookup}
		if tc.beforeToo {
			if s := h.Load(); s.timeout != tc.timeout || s.clients[0].Timeout != tc.timeout || s.excerpt != tc.excerpt {
				t.Errorf("%s before Configure: timeout %v excerpt %d, want %v %d", tc.name, s.timeout, s.excerpt, tc.timeout, tc.excerpt)
			}
		}
		if err := h.Configure(tc.settings); err != nil {
			t.Fatalf("%s: configure: %v", tc.name, err)
		}
		s := h.Load()
		if s.timeout != tc.timeout || s.clients[0].Timeout != tc.timeout || s.clients[1].Timeout != tc.timeout || s.excerpt != tc.excerpt {
			t.Errorf("%s: timeout %v excerpt %d, want %v %d", tc.name, s.timeout, s.excerpt, tc.timeout, tc.excerpt)
		}
	}
	// Before Configure, an env value that does not parse is Harbor's
	// default (Configure refuses it).
	h := &Holder{Lookup: env{envTimeout: "3s", envMaxRetry: "x"}.lookup}
	if s := h.Load(); s.timeout != defaultTimeout || s.maxFails != defaultMaxFails {
		t.Errorf("bad env before Configure: timeout %v max fails %d", s.timeout, s.maxFails)
	}
}

func TestMaxFailsIsHarborsEnvOrTheSetting(t *testing.T) {
	t.Parallel()
	three, zero := uint(3), uint(0)
	tests := []struct {
		name     string
		env      env
		settings *Settings
		want     uint
	}{
		{"Default", env{}, nil, 3},
		{"Env", env{envMaxRetry: "7"}, nil, 7},
		{"EnvTrimmed", env{envMaxRetry: " 7\n"}, nil, 7},
		{"EnvZeroIsTheHostDefault", env{envMaxRetry: "0"}, nil, 0},
		{"BadEnvBeforeConfigure", env{envMaxRetry: "many"}, nil, 3},
		{"SettingWins", env{envMaxRetry: "7"}, &Settings{MaxFails: &three}, 3},
		{"SettingZero", env{envMaxRetry: "7"}, &Settings{MaxFails: &zero}, 0},
		{"EmptySection", env{envMaxRetry: "5"}, &Settings{}, 5},
	}
	for _, tc := range tests {
		p := newTestPlugin(tc.env)
		if tc.settings != nil {
			if err := p.h.Configure(*tc.settings); err != nil {
				t.Fatalf("%s: configure: %v", tc.name, err)
			}
		}
		var r sdk.Retries = testJob{h: p.h}
		if got := r.MaxFails(); got != tc.want || !r.ShouldRetry() {
			t.Errorf("%s: MaxFails %d ShouldRetry %v, want %d true", tc.name, got, r.ShouldRetry(), tc.want)
		}
	}
}

func TestConfigureRefusesWhatItCannotUse(t *testing.T) {
	t.Parallel()
	neg, big := -1, maxExcerpt+1
	tests := []struct {
		name     string
		env      env
		settings Settings
		want     string
	}{
		{"BadMaxRetry", env{envMaxRetry: "three"}, Settings{}, `env JOBSERVICE_WEBHOOK_JOB_MAX_RETRY must be a whole number (the failed runs allowed), got "three"`},
		{"NegativeMaxRetry", env{envMaxRetry: "-1"}, Settings{}, `env JOBSERVICE_WEBHOOK_JOB_MAX_RETRY must be a whole number (the failed runs allowed), got "-1"`},
		{"BadTimeout", env{envTimeout: "3s"}, Settings{}, `env JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT must be a whole number of seconds (0: no timeout), got "3s"`},
		{"NegativeTimeout", env{envTimeout: "-1"}, Settings{}, `env JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT must be a whole number of seconds (0: no timeout), got "-1"`},
		{"NegativeTimeoutSetting", env{}, Settings{TimeoutSeconds: &neg}, `setting "timeout_seconds" must be 0 (no timeout) or more, got -1`},
		{"Excerpt", env{}, Settings{ExcerptBytes: &big}, `setting "body_excerpt_bytes" must be from 0 to 4096, got 4097`},
		{"NegativeExcerpt", env{}, Settings{ExcerptBytes: &neg}, `setting "body_excerpt_bytes" must be from 0 to 4096, got -1`},
		{"Network", env{}, Settings{AllowedNetworks: []string{"10.0.0.0/8", "intranet"}},
			`setting "allowed_networks[1]" must be a network in CIDR notation (such as "10.0.0.0/8") or an IP address, got "intranet"`},
	}
	for _, tc := range tests {
		err := newTestPlugin(tc.env).h.Configure(tc.settings)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: configure = %v, want %q", tc.name, err, tc.want)
		}
	}
	// The settings win over a bad env variable they replace.
	one, ten := uint(1), 10
	if err := newTestPlugin(env{envMaxRetry: "x", envTimeout: "y"}).h.Configure(Settings{MaxFails: &one, TimeoutSeconds: &ten}); err != nil {
		t.Errorf("settings over bad env variables: %v", err)
	}
}
