package oci

import (
	"fmt"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The grammar of the distribution spec: a repository name is path
// components of lowercase alphanumerics joined by one separator (".",
// "_", "__" or dashes), separated by "/"; a tag is at most 128 word
// characters, dots and dashes, not starting with either.
var (
	repositoryRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE        = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// maxRepository bounds a repository name (distribution's own limit).
const maxRepository = 255

// ValidRepository checks a repository name ("library/nginx"); the error
// names field, quoted, and says what a name must be.
func ValidRepository(field, repo string) error {
	switch {
	case repo == "":
		return fmt.Errorf("%q must be a repository name such as \"library/nginx\", got an empty one", field)
	case len(repo) > maxRepository:
		return fmt.Errorf("%q must be a repository name of at most %d characters, got %d", field, maxRepository, len(repo))
	case !repositoryRE.MatchString(repo):
		return fmt.Errorf("%q must be a repository name: lowercase letters and digits, with \".\", \"_\" or \"-\" between them and \"/\" between components, got %q", field, repo)
	}
	return nil
}

// ValidTag checks a tag ("v1.2"); the error names field.
func ValidTag(field, tag string) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("%q must be a tag: 1 to 128 letters, digits, \"_\", \".\" or \"-\", not starting with \".\" or \"-\", got %q", field, tag)
	}
	return nil
}

// ValidDigest checks a digest ("sha256:…" with 64 hex digits); the error
// names field.
func ValidDigest(field, digest string) error {
	h, err := v1.NewHash(digest)
	if err == nil && h.Algorithm == "sha256" && strings.ToLower(h.Hex) == h.Hex {
		return nil
	}
	return fmt.Errorf("%q must be a digest such as \"sha256:\" and 64 lowercase hex digits, got %q", field, digest)
}
