//go:build deps

package zzdeps

import (
	_ "github.com/CycloneDX/cyclonedx-go"
	_ "github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/factory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/reference"
	_ "github.com/google/go-containerregistry/pkg/authn"
	_ "github.com/google/go-containerregistry/pkg/name"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/empty"
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/google/go-containerregistry/pkg/v1/random"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/google/go-containerregistry/pkg/v1/remote/transport"
	_ "github.com/google/go-containerregistry/pkg/v1/static"
	_ "github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "github.com/google/go-containerregistry/pkg/v1/types"
	_ "github.com/google/go-containerregistry/pkg/v1/validate"
	_ "github.com/knqyf263/go-apk-version"
	_ "github.com/knqyf263/go-deb-version"
	_ "github.com/opencontainers/go-digest"
	_ "golang.org/x/time/rate"
)
