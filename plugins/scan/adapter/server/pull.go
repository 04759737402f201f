package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/plugins/scan/adapter/pkgdb"
	"github.com/berth-dev/berth/plugins/scan/scanapi"
)

// scanArtifact pulls the artifact, reads what it has installed and
// matches it against the advisories.
func (s *Server) scanArtifact(ctx context.Context, req scanapi.ScanRequest, log *slog.Logger) (*result, error) {
	u, err := url.Parse(req.Registry.URL)
	if err != nil {
		return nil, fmt.Errorf("registry URL %q: %v", req.Registry.URL, err)
	}
	opts := []name.Option{name.StrictValidation}
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	where := u.Host + "/" + req.Artifact.Repository + "@" + req.Artifact.Digest
	ref, err := name.NewDigest(where, opts...)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %v", where, err)
	}
	auth, err := authenticator(req.Registry.Authorization)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(s.cfg.RegistryTransport))
	if err != nil {
		return nil, fmt.Errorf("cannot pull %s from %s: %s", req.Artifact.Repository+"@"+req.Artifact.Digest, req.Registry.URL, pullError(err))
	}
	inv, err := pkgdb.FromImage(img)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: %w", where, context.Cause(ctx))
		}
		return nil, fmt.Errorf("reading the layers of %s: %s", req.Artifact.Repository+"@"+req.Artifact.Digest, pullError(err))
	}
	eco := inv.OS.Ecosystem()
	log.Info("image read", "os", inv.OS.PrettyName, "ecosystem", eco, "packages", len(inv.Packages))
	res := &result{inv: inv, at: s.cfg.Now()}
	if eco == "" {
		log.Warn("unknown operating system: no advisories apply", "id", inv.OS.ID)
		return res, nil
	}
	for _, p := range inv.Packages {
		fs, err := s.cfg.DB.Match(eco, p.SourceName(), p.SourceVer())
		if err != nil {
			log.Warn("package not matched", "package", p.Name, "error", err)
			continue
		}
		for _, f := range fs {
			res.findings = append(res.findings, finding{pkg: p, Finding: f})
		}
	}
	return res, nil
}

// authenticator reads a scan request's registry authorization.
func authenticator(h string) (authn.Authenticator, error) {
	if strings.TrimSpace(h) == "" {
		return authn.Anonymous, nil
	}
	scheme, cred, _ := strings.Cut(strings.TrimSpace(h), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil, errors.New("registry.authorization: Basic credentials are not base64")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, errors.New("registry.authorization: Basic credentials are not user:password")
		}
		return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
	case strings.EqualFold(scheme, "Bearer"):
		return authn.FromConfig(authn.AuthConfig{RegistryToken: cred}), nil
	}
	return nil, fmt.Errorf("registry.authorization: scheme %q is neither Basic nor Bearer", scheme)
}

// pullError words a registry's refusal: its status and error codes.
func pullError(err error) string {
	var terr *transport.Error
	if errors.As(err, &terr) {
		var codes []string
		for _, d := range terr.Errors {
			codes = append(codes, string(d.Code)+": "+d.Message)
		}
		msg := fmt.Sprintf("the registry answered %d", terr.StatusCode)
		if len(codes) > 0 {
			msg += " (" + strings.Join(codes, "; ") + ")"
		}
		if terr.StatusCode == 401 || terr.StatusCode == 403 {
			msg += "; check the scan request's registry authorization"
		}
		return msg
	}
	return err.Error()
}
