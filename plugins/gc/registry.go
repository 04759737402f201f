package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// registryCheck talks to the registry whose storage is collected: it
// checks that the registry answers before, and that every tag resolves
// and validates after.
type registryCheck struct {
	u    *url.URL
	reg  name.Registry
	auth authn.Authenticator
	tr   *http.Transport
}

func newRegistryCheck(raw string, creds []Credential) (*registryCheck, error) {
	u, err := parseRegistryURL(raw)
	if err != nil {
		return nil, err
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, err
	}
	c := &registryCheck{u: u, reg: reg, tr: http.DefaultTransport.(*http.Transport).Clone()}
	for _, cr := range creds {
		if cu, err := parseRegistryURL(cr.URL); err == nil && cu.Scheme == u.Scheme && cu.Host == u.Host {
			c.auth = &authn.Basic{Username: cr.Username, Password: cr.Password}
		}
	}
	if c.auth == nil {
		if c.auth, err = authn.DefaultKeychain.Resolve(reg); err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", u.Host, err)
		}
	}
	return c, nil
}

func (c *registryCheck) close() { c.tr.CloseIdleConnections() }

// ping checks that the registry answers GET /v2/ with 200, logged in.
func (c *registryCheck) ping(ctx context.Context) error {
	rt, err := transport.NewWithContext(ctx, c.reg, c.auth, c.tr, nil)
	if err != nil {
		return fmt.Errorf("the registry at %s does not answer: %w", c.u, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.u.String()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("the registry at %s does not answer: %w", c.u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the registry at %s answers GET /v2/ with %s (credentials: plugin_config.gc.registries)", c.u, resp.Status)
	}
	return nil
}

// verify resolves every tag of repos through the registry and validates
// what it names (an image, or an index and its images) with ggcr's
// validate, fast: every manifest parses, the config matches its digest,
// and every layer is served. Layer contents are not downloaded again:
// the sweep deletes whole blobs and never rewrites one.
func (c *registryCheck) verify(ctx context.Context, repos []*repository, workers int, progress progress) error {
	var refs []string
	for _, r := range repos {
		for _, tag := range sortedKeys(r.tags) {
			if d := r.tags[tag]; d != "" {
				if _, ok := r.revisions[d]; ok {
					refs = append(refs, r.name+":"+tag)
				}
			}
		}
	}
	var (
		mu       sync.Mutex
		failures []string
		done     int
	)
	progress("verify", 0, len(refs))
	err := parallel(ctx, workers, len(refs), func(i int) error {
		err := c.validate(ctx, refs[i])
		mu.Lock()
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", refs[i], err))
		}
		done++
		n := done
		mu.Unlock()
		progress("verify", n, len(refs))
		return nil
	})
	if err != nil {
		return err
	}
	if len(failures) > 0 {
		sort.Strings(failures)
		return errors.New(fmt.Sprintf("%d of %d tags no longer validate: ", len(failures), len(refs)) + strings.Join(failures, "; "))
	}
	return nil
}

func (c *registryCheck) validate(ctx context.Context, ref string) error {
	var opts []name.Option
	if c.u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	tag, err := name.NewTag(c.u.Host+"/"+ref, opts...)
	if err != nil {
		return err
	}
	ro := []remote.Option{remote.WithContext(ctx), remote.WithAuth(c.auth), remote.WithTransport(c.tr)}
	desc, err := remote.Get(tag, ro...)
	if err != nil {
		return err
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		return validate.Index(idx, validate.Fast)
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return err
		}
		return validate.Image(img, validate.Fast)
	}
	return fmt.Errorf("neither an image nor an index (%s)", desc.MediaType)
}
