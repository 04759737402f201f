package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/plugins/scan/scanapi"
	"github.com/berth-dev/berth/sdk/egress"
)

// Params are Harbor's parameters of a scan job (Harbor core's scan
// controller sets them; its job reads them in src/pkg/scan/job.go), each
// of the JSON ones given as a JSON string, as Harbor sends them, or as an
// object; plus Berth's timeout_seconds.
type Params struct {
	Registration json.RawMessage `json:"registration" jsonschema:"oneof_type=string;object,description=the scanner registration (url and auth and access_credential and name and uuid and skip_cert_verify) as an object or its JSON"`
	ScanRequest  json.RawMessage `json:"scanRequest" jsonschema:"oneof_type=string;object,description=the scan request of the Pluggable Scanner API (registry and artifact and enabled_capabilities) as an object or its JSON"`
	MimeTypes    []string        `json:"mimeTypes" jsonschema:"minItems=1,description=the report MIME types to fetch"`
	// TimeoutSeconds bounds the whole job: metadata, submission and every
	// report (Harbor: 30 minutes, on a timer that never fires).
	TimeoutSeconds int `json:"timeout_seconds,omitempty" jsonschema:"minimum=1,maximum=86400,description=seconds the scan may take before it fails as timed out (default 1800)"`
	// RobotAccount and AuthType are what Harbor core also sends: the robot
	// account ({"name"\,"secret"}) whose Basic credentials the adapter is
	// to pull with, when scanRequest.registry.authorization is empty.
	RobotAccount json.RawMessage `json:"robotAccount,omitempty" jsonschema:"oneof_type=string;object,description=Harbor's robot account (name and secret) whose credentials the adapter pulls with when scanRequest.registry.authorization is empty"`
	AuthType     string          `json:"authType,omitempty" jsonschema:"enum=Basic,enum=Bearer,description=Harbor's registry authorization type; Berth sends the robot's Basic credentials either way"`
}

// defaultTimeout is timeout_seconds' default: Harbor's 30 minutes.
const defaultTimeout = 1800

// Registration is Harbor's scanner registration, as far as a scan uses it
// (Harbor's JSON also has description, disabled, is_default, ...).
type Registration struct {
	UUID             string `json:"uuid"`
	Name             string `json:"name"`
	URL              string `json:"url"`
	Auth             string `json:"auth"`
	AccessCredential string `json:"access_credential"`
	SkipCertVerify   bool   `json:"skip_cert_verify"`
	// SkipCertVerifyHarbor is Harbor's own spelling of the field.
	SkipCertVerifyHarbor bool `json:"skip_certVerify"`
}

// robot is Harbor's robot account, as far as a scan uses it.
type robot struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// Adapter auth types.
const (
	authNone   = ""
	authBasic  = "Basic"
	authBearer = "Bearer"
	authAPIKey = scanapi.HeaderAPIKey
)

// job is a scan job's parameters, decoded and checked.
type job struct {
	reg     Registration
	base    *url.URL // the adapter's URL
	auth    string   // one of the auth constants
	req     scanapi.ScanRequest
	mimes   []string
	timeout int
}

// digestRE is an OCI digest: algorithm ":" encoded.
var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

// parse decodes and checks p; every error names the parameter.
func parse(p Params, guard *egress.Guard) (*job, error) {
	j := &job{timeout: p.TimeoutSeconds}
	if j.timeout == 0 {
		j.timeout = defaultTimeout
	}
	if err := decodeJSON(p.Registration, "registration", &j.reg); err != nil {
		return nil, err
	}
	u, err := httpURL(j.reg.URL, "registration.url")
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		if err := guard.Check(ip); err != nil {
			return nil, fmt.Errorf(`parameter "registration.url" (%s) is refused: %w`, u.Redacted(), err)
		}
	}
	j.base = u
	switch a := strings.TrimSpace(j.reg.Auth); {
	case a == "":
		j.auth = authNone
	case strings.EqualFold(a, authBasic):
		j.auth = authBasic
	case strings.EqualFold(a, authBearer):
		j.auth = authBearer
	case strings.EqualFold(a, authAPIKey), strings.EqualFold(a, "APIKey"):
		j.auth = authAPIKey
	default:
		return nil, fmt.Errorf(`parameter "registration.auth" must be "", "Basic", "Bearer" or "X-ScannerAdapter-API-Key" (also spelled "APIKey"), got %q`, a)
	}
	if j.auth != authNone && j.reg.AccessCredential == "" {
		return nil, fmt.Errorf(`parameter "registration.access_credential" is required for auth type %q`, j.auth)
	}
	if strings.ContainsAny(j.reg.AccessCredential, "\r\n\x00") {
		return nil, errors.New(`parameter "registration.access_credential" must not hold a line break`)
	}

	if err := decodeJSON(p.ScanRequest, "scanRequest", &j.req); err != nil {
		return nil, err
	}
	if _, err := httpURL(j.req.Registry.URL, "scanRequest.registry.url"); err != nil {
		return nil, err
	}
	a := j.req.Artifact
	switch {
	case strings.TrimSpace(a.Repository) == "":
		return nil, errors.New(`parameter "scanRequest.artifact.repository" is required: the repository of the artifact to scan`)
	case a.Digest == "":
		return nil, errors.New(`parameter "scanRequest.artifact.digest" is required: the digest of the artifact to scan`)
	case !digestRE.MatchString(a.Digest):
		return nil, fmt.Errorf(`parameter "scanRequest.artifact.digest" must be a digest such as sha256:<hex>, got %q`, a.Digest)
	}
	if a.MimeType != "" {
		if _, _, err := mime.ParseMediaType(a.MimeType); err != nil {
			return nil, fmt.Errorf(`parameter "scanRequest.artifact.mime_type" must be a MIME type, got %q`, a.MimeType)
		}
	}
	if auth := j.req.Registry.Authorization; strings.ContainsAny(auth, "\r\n\x00") {
		return nil, errors.New(`parameter "scanRequest.registry.authorization" must not hold a line break`)
	}
	for i, c := range j.req.EnabledCapabilities {
		if c.Type == "" {
			return nil, fmt.Errorf(`parameter "scanRequest.enabled_capabilities[%d].type" is required`, i)
		}
	}

	if len(p.MimeTypes) == 0 {
		return nil, errors.New(`parameter "mimeTypes" must list at least one report MIME type`)
	}
	for i, m := range p.MimeTypes {
		if _, _, err := mime.ParseMediaType(m); err != nil {
			return nil, fmt.Errorf(`parameter "mimeTypes[%d]" must be a MIME type, got %q`, i, m)
		}
		for _, prev := range j.mimes {
			if scanapi.SameMIME(prev, m) {
				return nil, fmt.Errorf(`parameter "mimeTypes[%d]" repeats %q`, i, m)
			}
		}
		j.mimes = append(j.mimes, m)
	}

	if len(p.RobotAccount) > 0 && string(p.RobotAccount) != "null" {
		var r robot
		if err := decodeJSON(p.RobotAccount, "robotAccount", &r); err != nil {
			return nil, err
		}
		if r.Name == "" || r.Secret == "" {
			return nil, errors.New(`parameter "robotAccount" must have a name and a secret`)
		}
		if j.req.Registry.Authorization == "" {
			// What Harbor's job makes of a robot for Basic. For Bearer
			// Harbor trades it for a token at its core's token service,
			// which a standalone Berth does not have: the adapter gets the
			// Basic credentials and trades them itself where the registry
			// wants a token.
			j.req.Registry.Authorization = "Basic " + base64.StdEncoding.EncodeToString([]byte(r.Name+":"+r.Secret))
		}
	}
	return j, nil
}

// decodeJSON decodes a parameter given as an object or as the JSON of one.
func decodeJSON(raw json.RawMessage, name string, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("parameter %q: %v", name, err)
		}
		raw = []byte(strings.TrimSpace(s))
	}
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("parameter %q must be a JSON object, or a string holding the JSON of one", name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var terr *json.UnmarshalTypeError
		if errors.As(err, &terr) && terr.Field != "" {
			return fmt.Errorf("parameter %q must be %s, got %s", name+"."+terr.Field, terr.Type.Kind(), terr.Value)
		}
		return fmt.Errorf("parameter %q is not valid JSON: %v", name, err)
	}
	return nil
}

// httpURL checks an http or https URL with a host.
func httpURL(s, name string) (*url.URL, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("parameter %q is required: an http or https URL", name)
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("parameter %q must be an http or https URL: %v", name, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		what := "no scheme"
		if u.Scheme != "" {
			what = fmt.Sprintf("scheme %q", u.Scheme)
		}
		return nil, fmt.Errorf("parameter %q must be an http or https URL, got one with %s", name, what)
	case u.Opaque != "" || u.Hostname() == "":
		return nil, fmt.Errorf("parameter %q must be an http or https URL with a host", name)
	}
	return u, nil
}
