package main

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// descriptor is the part of an OCI or Docker descriptor the collector
// needs.
type descriptor struct {
	Digest digest.Digest `json:"digest"`
}

// anyManifest is the union of the manifest formats a registry stores:
// OCI image manifest and index, Docker schema 2 manifest and manifest
// list, Docker schema 1 (fsLayers).
type anyManifest struct {
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`
	FSLayers  []struct {
		BlobSum digest.Digest `json:"blobSum"`
	} `json:"fsLayers"`
}

// parseManifest returns what the manifest d (its bytes raw) references:
// blobs (config, layers) and children (the manifests of an index).
func parseManifest(d digest.Digest, raw []byte) (blobs, children []digest.Digest, err error) {
	var m anyManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, fmt.Errorf("manifest %s is not JSON: %w", d, err)
	}
	check := func(x digest.Digest) error {
		if err := x.Validate(); err != nil {
			return fmt.Errorf("manifest %s references %q: %w", d, x, err)
		}
		return nil
	}
	if m.Config != nil {
		if err := check(m.Config.Digest); err != nil {
			return nil, nil, err
		}
		blobs = append(blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		if err := check(l.Digest); err != nil {
			return nil, nil, err
		}
		blobs = append(blobs, l.Digest)
	}
	for _, l := range m.FSLayers {
		if err := check(l.BlobSum); err != nil {
			return nil, nil, err
		}
		blobs = append(blobs, l.BlobSum)
	}
	for _, c := range m.Manifests {
		if err := check(c.Digest); err != nil {
			return nil, nil, err
		}
		children = append(children, c.Digest)
	}
	return blobs, children, nil
}
