package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/plugins/internal/oci"
	"github.com/berth-dev/berth/sdk/egress"
)

// Params are Harbor's parameters of a REPLICATION job (Harbor's core
// sets them in its copy flow; its job reads them in
// src/jobservice/job/impl/replication/replication.go), plus Berth's own
// chunk_size and filters.
type Params struct {
	// SrcResource and DstResource are Harbor's model.Resource: the JSON of
	// one, as Harbor's core sends it, or the object itself.
	SrcResource any `json:"src_resource" jsonschema:"description=the source: a resource (registry{type\\,url\\,credential\\,insecure}\\, metadata{repository{name}\\, artifacts[{tags\\,digest}]}) as an object or its JSON"`
	DstResource any `json:"dst_resource" jsonschema:"description=the destination: a resource as src_resource; its artifacts\\, when given\\, rename the source's tags one for one"`
	// Speed is kilobits per second over the whole job; 0 is no limit, and
	// so is -1, what Harbor's core sends for a policy without one.
	Speed       int64 `json:"speed,omitempty" jsonschema:"minimum=-1,maximum=2147483647,description=bandwidth limit of the job in kilobits per second (0 or -1: none)"`
	CopyByChunk bool  `json:"copy_by_chunk,omitempty" jsonschema:"description=upload blobs in chunks of chunk_size bytes (PATCH with Content-Range)"`
	ChunkSize   int64 `json:"chunk_size,omitempty" jsonschema:"minimum=1024,maximum=268435456,description=bytes per chunk when copy_by_chunk (default 10 MiB)"`
	// Filters choose repositories and tags when the source lists no
	// artifacts.
	Filters []Filter `json:"filters,omitempty" jsonschema:"description=repository and tag patterns applied when the source lists no artifacts"`
}

// Filter is a pattern in the shape of Harbor's policy filters.
type Filter struct {
	Type       string `json:"type" jsonschema:"enum=name,enum=repository,enum=tag,description=what the pattern matches: name (or repository) or tag"`
	Value      string `json:"value" jsonschema:"description=a glob: * within a path component\\, ** across them\\, ? one character\\, {a\\,b} alternatives"`
	Decoration string `json:"decoration,omitempty" jsonschema:"enum=matches,enum=excludes,description=matches (the default) or excludes"`
}

const (
	defaultChunkSize = 10 << 20
	// kilobit is what speed counts, in bytes.
	kilobit = 1000.0 / 8
)

// resource is Harbor's model.Resource, as far as a copy needs it;
// Harbor's other fields (extended_info, ...) are ignored.
type resource struct {
	Type        string        `json:"type"`
	Registry    *oci.Registry `json:"registry"`
	Metadata    *metadata     `json:"metadata"`
	Override    bool          `json:"override"`
	Deleted     bool          `json:"deleted"`
	IsDeleteTag bool          `json:"is_delete_tag"`
}

type metadata struct {
	Repository *struct {
		Name string `json:"name"`
	} `json:"repository"`
	Artifacts []artifact `json:"artifacts"`
}

type artifact struct {
	Type   string   `json:"type"`
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
}

// plan is what a job's parameters resolve to.
type plan struct {
	src, dst       oci.Registry
	srcRepo        string // "" with dstRepo a prefix: every repository of the source
	dstRepo        string
	units          []unit // explicit artifacts; nil: list the source
	override       bool
	copyByChunk    bool
	chunkSize      int64
	bytesPerSecond float64 // 0: no limit
	repoFilters    []glob
	tagFilters     []glob
}

// unit is one artifact to copy: a source tag or digest to a destination
// tag or digest.
type unit struct {
	srcRepo, srcRef string // srcRef: "tag" or "sha256:…"
	dstRepo, dstRef string
}

func (u unit) String() string    { return joinRef(u.srcRepo, u.srcRef) }
func (u unit) dstString() string { return joinRef(u.dstRepo, u.dstRef) }

func joinRef(repo, ref string) string {
	if strings.HasPrefix(ref, "sha256:") {
		return repo + "@" + ref
	}
	return repo + ":" + ref
}

// resolve checks p and makes its plan; every error names the parameter
// and says what is expected.
func resolve(p Params, guard *egress.Guard) (*plan, error) {
	src, err := decodeResource("src_resource", p.SrcResource)
	if err != nil {
		return nil, err
	}
	dst, err := decodeResource("dst_resource", p.DstResource)
	if err != nil {
		return nil, err
	}
	pl := &plan{src: *src.Registry, dst: *dst.Registry, override: dst.Override || src.Override, copyByChunk: p.CopyByChunk, chunkSize: p.ChunkSize}
	if err := pl.src.Check("src_resource.registry", guard); err != nil {
		return nil, fmt.Errorf("parameter %w", err)
	}
	if err := pl.dst.Check("dst_resource.registry", guard); err != nil {
		return nil, fmt.Errorf("parameter %w", err)
	}
	switch {
	case p.Speed < -1:
		return nil, fmt.Errorf(`parameter "speed" must be a whole number of kilobits per second, 0 (or -1) for no limit, got %d`, p.Speed)
	case p.Speed > 0:
		pl.bytesPerSecond = float64(p.Speed) * kilobit
	}
	switch {
	case p.ChunkSize == 0:
		pl.chunkSize = defaultChunkSize
	case p.ChunkSize < 1024 || p.ChunkSize > 256<<20:
		return nil, fmt.Errorf(`parameter "chunk_size" must be from 1024 to 268435456 bytes, got %d`, p.ChunkSize)
	}
	for i, f := range p.Filters {
		g, err := compileGlob(f.Value)
		if err != nil {
			return nil, fmt.Errorf(`parameter "filters.%d.value" must be a glob pattern: %v`, i, err)
		}
		g.exclude = f.Decoration == "excludes"
		switch f.Type {
		case "name", "repository":
			pl.repoFilters = append(pl.repoFilters, g)
		case "tag":
			pl.tagFilters = append(pl.tagFilters, g)
		default:
			return nil, fmt.Errorf(`parameter "filters.%d.type" must be "name", "repository" or "tag", got %q`, i, f.Type)
		}
		if f.Decoration != "" && f.Decoration != "matches" && f.Decoration != "excludes" {
			return nil, fmt.Errorf(`parameter "filters.%d.decoration" must be "matches" or "excludes", got %q`, i, f.Decoration)
		}
	}
	return pl, pl.units0(src, dst)
}

// units0 fills the plan's repositories and artifacts.
func (pl *plan) units0(src, dst *resource) error {
	srcMeta, dstMeta := src.Metadata, dst.Metadata
	if srcMeta == nil {
		srcMeta = &metadata{}
	}
	if dstMeta == nil {
		dstMeta = &metadata{}
	}
	if srcMeta.Repository != nil {
		pl.srcRepo = srcMeta.Repository.Name
	}
	if dstMeta.Repository != nil {
		pl.dstRepo = dstMeta.Repository.Name
	}
	if pl.srcRepo != "" {
		if err := oci.ValidRepository("src_resource.metadata.repository.name", pl.srcRepo); err != nil {
			return fmt.Errorf("parameter %w", err)
		}
		if pl.dstRepo == "" {
			pl.dstRepo = pl.srcRepo
		}
	}
	if pl.dstRepo != "" {
		if err := oci.ValidRepository("dst_resource.metadata.repository.name", pl.dstRepo); err != nil {
			return fmt.Errorf("parameter %w", err)
		}
	}
	srcArts, dstArts := srcMeta.Artifacts, dstMeta.Artifacts
	if len(srcArts) == 0 {
		if len(dstArts) > 0 {
			return fmt.Errorf(`parameter "dst_resource.metadata.artifacts" lists %d artifacts, but "src_resource.metadata.artifacts" none: the destination's tags must match the source's one for one`, len(dstArts))
		}
		return nil
	}
	if pl.srcRepo == "" {
		return fmt.Errorf(`parameter "src_resource.metadata.repository.name" must name the repository of the artifacts it lists, got none`)
	}
	if len(dstArts) > 0 && len(dstArts) != len(srcArts) {
		return fmt.Errorf(`parameter "dst_resource.metadata.artifacts" must list as many artifacts as "src_resource.metadata.artifacts" (%d), got %d`, len(srcArts), len(dstArts))
	}
	for i, a := range srcArts {
		at := fmt.Sprintf("src_resource.metadata.artifacts[%d]", i)
		if a.Digest == "" && len(a.Tags) == 0 {
			return fmt.Errorf("parameter %q must have tags or a digest, got neither", at)
		}
		if a.Digest != "" {
			if err := oci.ValidDigest(at+".digest", a.Digest); err != nil {
				return fmt.Errorf("parameter %w", err)
			}
		}
		dstTags := a.Tags
		if len(dstArts) > 0 {
			if len(dstArts[i].Tags) != len(a.Tags) {
				return fmt.Errorf(`parameter "dst_resource.metadata.artifacts[%d].tags" must have as many tags as the source's artifact (%d), got %d`, i, len(a.Tags), len(dstArts[i].Tags))
			}
			dstTags = dstArts[i].Tags
		}
		for j, tag := range a.Tags {
			if err := oci.ValidTag(fmt.Sprintf("%s.tags[%d]", at, j), tag); err != nil {
				return fmt.Errorf("parameter %w", err)
			}
			if err := oci.ValidTag(fmt.Sprintf("dst_resource.metadata.artifacts[%d].tags[%d]", i, j), dstTags[j]); err != nil {
				return fmt.Errorf("parameter %w", err)
			}
			// A digest given with its tags pins what is copied: the tag
			// must still point at it (checked at run time).
			srcRef := tag
			if a.Digest != "" {
				srcRef = a.Digest
			}
			pl.units = append(pl.units, unit{srcRepo: pl.srcRepo, srcRef: srcRef, dstRepo: pl.dstRepo, dstRef: dstTags[j]})
		}
		if len(a.Tags) == 0 {
			pl.units = append(pl.units, unit{srcRepo: pl.srcRepo, srcRef: a.Digest, dstRepo: pl.dstRepo, dstRef: a.Digest})
		}
	}
	return nil
}

// decodeResource decodes a resource parameter: Harbor's JSON string of
// one, or the object.
func decodeResource(param string, v any) (*resource, error) {
	var raw []byte
	switch x := v.(type) {
	case string:
		raw = []byte(x)
	case map[string]any:
		raw, _ = json.Marshal(x)
	default:
		return nil, fmt.Errorf("parameter %q must be a resource: an object with registry and metadata, or its JSON as a string, got %s", param, jsonKind(v))
	}
	var r resource
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("parameter %q must be a resource: an object with registry and metadata, or its JSON as a string: %v", param, cleanJSONError(err))
	}
	switch {
	case r.Registry == nil:
		return nil, fmt.Errorf("parameter %q must have a registry (type, url, credential, insecure), got none", param)
	case r.Deleted || r.IsDeleteTag:
		return nil, fmt.Errorf("parameter %q asks for a deletion (deleted or is_delete_tag), which this REPLICATION job does not do: it copies", param)
	case r.Type != "" && r.Type != "image" && r.Type != "artifact":
		return nil, fmt.Errorf("parameter %q has type %q: this job copies images and artifacts (type \"image\" or \"artifact\")", param, r.Type)
	}
	return &r, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "true or false"
	case float64, json.Number:
		return "a number"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

// cleanJSONError drops Go's type names from a decoding error.
func cleanJSONError(err error) string {
	var terr *json.UnmarshalTypeError
	if errors.As(err, &terr) && terr.Field != "" {
		return fmt.Sprintf("%s must not be %s", terr.Field, terr.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// glob is a compiled filter pattern.
type glob struct {
	re      *regexp.Regexp
	exclude bool
}

// compileGlob compiles a Harbor-style pattern: * within a path component,
// ** across components, ? one character but "/", {a,b} alternatives.
func compileGlob(p string) (glob, error) {
	if p == "" {
		return glob{}, fmt.Errorf("it is empty")
	}
	var b strings.Builder
	b.WriteString("^")
	depth := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '{':
			depth++
			b.WriteString("(?:")
		case c == '}' && depth > 0:
			depth--
			b.WriteString(")")
		case c == ',' && depth > 0:
			b.WriteString("|")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if depth != 0 {
		return glob{}, fmt.Errorf("%q has a { without its }", p)
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return glob{}, fmt.Errorf("%q: %v", p, err)
	}
	return glob{re: re}, nil
}

// pass says whether s passes every filter: it matches each "matches"
// filter and no "excludes" one.
func pass(filters []glob, s string) bool {
	for _, f := range filters {
		if f.re.MatchString(s) == f.exclude {
			return false
		}
	}
	return true
}

// destination is the destination repository of source repository repo
// when the source lists every repository: the prefix, if any, and the
// source's name.
func (pl *plan) destination(repo string) string {
	if pl.dstRepo == "" {
		return repo
	}
	return path.Join(pl.dstRepo, repo)
}
