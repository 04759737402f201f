package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/time/rate"

	"github.com/berth-dev/berth/plugins/internal/oci"
	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/egress"
)

// userAgent is sent with every request.
const userAgent = "berth-replication/" + version

// run is one run of a job: its plan, its clients, what it has seen of the
// destination and its counts. It is used by one goroutine.
type run struct {
	job   sdk.Context // check-ins and output; blocking calls take their context first
	log   *slog.Logger
	pl    *plan
	guard *egress.Guard
	src   *oci.Client
	dst   *oci.Client
	lim   *rate.Limiter // nil: no limit
	burst int

	// have maps a blob to a destination repository known to hold it, so
	// that another repository can mount it.
	have map[v1.Hash]string
	// pushers are the authenticated transports of the destination's
	// repositories.
	pushers map[string]*http.Client
	sum     summary
}

// summary is what a run did; it is the job's output.
type summary struct {
	Artifacts     int      `json:"artifacts"`
	Copied        int      `json:"copied"`
	Skipped       int      `json:"skipped"`
	Failed        []string `json:"failed,omitempty"`
	BlobsUploaded int      `json:"blobs_uploaded"`
	BlobsSkipped  int      `json:"blobs_skipped"`
	BlobsMounted  int      `json:"blobs_mounted"`
	Bytes         int64    `json:"bytes"`
}

func newRun(ctx sdk.Context, pl *plan, g *egress.Guard) *run {
	r := &run{job: ctx, log: ctx.Logger(), pl: pl, guard: g, have: map[v1.Hash]string{}, pushers: map[string]*http.Client{}}
	if pl.bytesPerSecond > 0 {
		r.burst = int(min(pl.bytesPerSecond, 32<<10))
		r.burst = max(r.burst, 1)
		r.lim = rate.NewLimiter(rate.Limit(pl.bytesPerSecond), r.burst)
	}
	return r
}

// run copies every artifact of the plan.
func (r *run) run(ctx context.Context) error {
	var err error
	if r.src, err = oci.Dial(ctx, "source", r.pl.src, r.guard, userAgent); err != nil {
		return r.fail(ctx, err)
	}
	if r.dst, err = oci.Dial(ctx, "destination", r.pl.dst, r.guard, userAgent); err != nil {
		return r.fail(ctx, err)
	}
	units, err := r.units(ctx)
	if err != nil {
		return r.fail(ctx, err)
	}
	r.sum.Artifacts = len(units)
	how := "no speed limit"
	if r.lim != nil {
		how = fmt.Sprintf("at most %d bytes/s", int64(r.pl.bytesPerSecond))
	}
	if r.pl.copyByChunk {
		how += fmt.Sprintf(", in chunks of %d bytes", r.pl.chunkSize)
	}
	r.log.Info(fmt.Sprintf("replicating %d artifacts from %s to %s (%s)", len(units), r.src.Host(), r.dst.Host(), how))
	var failed []string
	anyRetryable := false
	for _, u := range units {
		if err := ctx.Err(); err != nil {
			return r.stopped(ctx)
		}
		start := time.Now()
		out, err := r.copy(ctx, u)
		switch {
		case err != nil && ctx.Err() != nil:
			return r.stopped(ctx)
		case err != nil:
			msg := r.redact(fmt.Sprintf("%s: %v", u, err))
			failed = append(failed, msg)
			anyRetryable = anyRetryable || !permanent(err)
			r.log.Error("failed to copy " + msg)
		default:
			r.log.Info(fmt.Sprintf("%s to %s/%s: %s in %s", u, r.dst.Host(), u.dstString(), out, time.Since(start).Round(time.Millisecond)))
		}
	}
	r.sum.Failed = failed
	_ = r.job.SetOutput(r.sum)
	r.log.Info(fmt.Sprintf("done: %d artifacts, %d copied, %d skipped, %d failed; blobs: %d uploaded (%d bytes), %d mounted, %d skipped",
		r.sum.Artifacts, r.sum.Copied, r.sum.Skipped, len(failed), r.sum.BlobsUploaded, r.sum.Bytes, r.sum.BlobsMounted, r.sum.BlobsSkipped))
	if len(failed) == 0 {
		return nil
	}
	err = fmt.Errorf("%d of %d artifacts failed: %s", len(failed), len(units), strings.Join(failed, "; "))
	if !anyRetryable {
		return sdk.Permanent(err)
	}
	return err
}

// fail ends the run with err: for good when no retry can mend it.
func (r *run) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return r.stopped(ctx)
	}
	r.log.Error(r.redact(err.Error()))
	if permanent(err) {
		return sdk.Permanent(err)
	}
	return err
}

// redact removes both registries' secrets from msg (errors come redacted
// by the client that made them; this is for the messages put together
// here).
func (r *run) redact(msg string) string {
	for _, c := range []*oci.Client{r.src, r.dst} {
		if c != nil {
			msg = c.RedactString(msg)
		}
	}
	return msg
}

// stopped ends a run whose context is done.
func (r *run) stopped(ctx context.Context) error {
	cause := context.Cause(ctx)
	r.log.Warn(fmt.Sprintf("stopped: %v; no destination tag points at an incomplete image", cause))
	return cause
}

// units lists the artifacts to copy: those the parameters list, or every
// tag (of every repository) of the source that passes the filters.
func (r *run) units(ctx context.Context) ([]unit, error) {
	if r.pl.units != nil {
		return r.pl.units, nil
	}
	repos := []string{r.pl.srcRepo}
	if r.pl.srcRepo == "" {
		all, err := remote.Catalog(ctx, r.src.Registry(), r.src.Options(ctx)...)
		if err != nil {
			return nil, r.src.Wrap("list the repositories", err)
		}
		repos = repos[:0]
		for _, repo := range all {
			if pass(r.pl.repoFilters, repo) {
				repos = append(repos, repo)
			}
		}
	}
	var out []unit
	for _, repo := range repos {
		ref, err := r.src.Repository(repo)
		if err != nil {
			return nil, fmt.Errorf("source repository %q: %v", repo, err)
		}
		tags, err := remote.List(ref, r.src.Options(ctx)...)
		if err != nil {
			return nil, r.src.Wrap("list the tags of "+repo, err)
		}
		dst := r.pl.dstRepo
		if r.pl.srcRepo == "" {
			dst = r.pl.destination(repo)
		}
		for _, tag := range tags {
			if pass(r.pl.tagFilters, tag) {
				out = append(out, unit{srcRepo: repo, srcRef: tag, dstRepo: dst, dstRef: tag})
			}
		}
	}
	return out, nil
}

// node is a manifest to copy: an image with its blobs, or an index.
type node struct {
	desc  *remote.Descriptor
	blobs []v1.Descriptor
	child bool // referred to by an index: pushed by digest
}

// copy copies one artifact: its blobs first (those of every image of an
// index), each image's manifest after its blobs, the tag last. It returns
// what it did, for the log.
func (r *run) copy(ctx context.Context, u unit) (string, error) {
	srcRepo, err := r.src.Repository(u.srcRepo)
	if err != nil {
		return "", err
	}
	dstRepo, err := r.dst.Repository(u.dstRepo)
	if err != nil {
		return "", err
	}
	desc, err := remote.Get(reference(srcRepo, u.srcRef), r.src.Options(ctx)...)
	var terr *transport.Error
	switch {
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return "", r.src.Wrap("get the manifest of "+u.String(), fmt.Errorf("%w (%v)", errSourceMissing, err))
	case err != nil:
		return "", r.src.Wrap("get the manifest of "+u.String(), err)
	}
	dstRef := reference(dstRepo, u.dstRef)
	var nodes []node
	if err := r.walk(ctx, srcRepo, desc, false, map[v1.Hash]bool{}, &nodes); err != nil {
		return "", err
	}
	var blobs []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, n := range nodes {
		for _, b := range n.blobs {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				blobs = append(blobs, b)
			}
		}
	}
	p := &progress{r: r, artifact: u.String(), total: len(blobs), done: map[v1.Hash]bool{}}

	if _, isTag := dstRef.(name.Tag); isTag {
		cur, err := remote.Head(dstRef, r.dst.Options(ctx)...)
		switch {
		case err == nil && cur.Digest == desc.Digest:
			for _, b := range blobs {
				p.report(b, 0, true, false)
			}
			r.sum.Skipped++
			return fmt.Sprintf("skipped: the destination tag is %s already (%d blobs skipped)", desc.Digest, len(blobs)), nil
		case err == nil && !r.pl.override:
			r.sum.Skipped++
			return fmt.Sprintf("skipped: the destination tag points at %s, not %s, and override is false: kept", cur.Digest, desc.Digest), nil
		case err == nil:
			r.log.Info(fmt.Sprintf("%s: overriding the destination tag, %s now", u.dstString(), cur.Digest))
		case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		default:
			return "", r.dst.Wrap("check the tag "+u.dstString(), err)
		}
	}

	for _, n := range nodes {
		if n.child {
			if ok, err := r.hasManifest(ctx, dstRepo, n.desc.Digest); err != nil {
				return "", err
			} else if ok {
				for _, b := range n.blobs {
					p.report(b, 0, true, false)
				}
				continue
			}
		}
		for _, b := range n.blobs {
			if p.done[b.Digest] {
				continue
			}
			res, err := r.blob(ctx, srcRepo, dstRepo, b)
			if err != nil {
				return "", err
			}
			p.report(b, res.bytes, res.skipped, res.mounted)
		}
		to := dstRef
		if n.child {
			to = dstRepo.Digest(n.desc.Digest.String())
		}
		if err := remote.Put(to, n.desc, r.dst.Options(ctx)...); err != nil {
			return "", r.dst.Wrap(fmt.Sprintf("put the manifest %s", n.desc.Digest), err)
		}
	}
	r.sum.Copied++
	kind := "image"
	if desc.MediaType.IsIndex() {
		kind = fmt.Sprintf("index of %d manifests", len(nodes)-1)
	}
	return fmt.Sprintf("copied %s %s: %d blobs, %d uploaded (%d bytes), %d mounted, %d skipped",
		kind, desc.Digest, len(blobs), p.uploaded, p.bytes, p.mounted, p.skipped), nil
}

// walk adds desc and what it refers to, children first, to out.
func (r *run) walk(ctx context.Context, repo name.Repository, desc *remote.Descriptor, child bool, seen map[v1.Hash]bool, out *[]node) error {
	if seen[desc.Digest] {
		return nil
	}
	seen[desc.Digest] = true
	switch {
	case desc.MediaType.IsIndex():
		idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return fmt.Errorf("the index %s does not parse: %v", desc.Digest, err)
		}
		for _, m := range idx.Manifests {
			if !m.MediaType.IsIndex() && !m.MediaType.IsImage() {
				return fmt.Errorf("the index %s refers to %s of media type %q, neither an image nor an index", desc.Digest, m.Digest, m.MediaType)
			}
			cd, err := remote.Get(repo.Digest(m.Digest.String()), r.src.Options(ctx)...)
			if err != nil {
				return r.src.Wrap("get the manifest "+m.Digest.String(), err)
			}
			if err := r.walk(ctx, repo, cd, true, seen, out); err != nil {
				return err
			}
		}
		*out = append(*out, node{desc: desc, child: child})
	case desc.MediaType.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return fmt.Errorf("the manifest %s does not parse: %v", desc.Digest, err)
		}
		n := node{desc: desc, child: child, blobs: []v1.Descriptor{m.Config}}
		for _, l := range m.Layers {
			// A foreign layer stays where it is, as with docker push.
			if l.MediaType.IsDistributable() {
				n.blobs = append(n.blobs, l)
			}
		}
		*out = append(*out, n)
	default:
		return fmt.Errorf("%s is of media type %q, neither an image nor an index (schema 1 manifests are not copied)", desc.Digest, desc.MediaType)
	}
	return nil
}

// reference is repo's tag or digest ref.
func reference(repo name.Repository, ref string) name.Reference {
	if strings.HasPrefix(ref, "sha256:") {
		return repo.Digest(ref)
	}
	return repo.Tag(ref)
}

// hasManifest says whether the destination has the manifest d in repo.
func (r *run) hasManifest(ctx context.Context, repo name.Repository, d v1.Hash) (bool, error) {
	_, err := remote.Head(repo.Digest(d.String()), r.dst.Options(ctx)...)
	var terr *transport.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return false, nil
	}
	return false, r.dst.Wrap("check the manifest "+d.String(), err)
}

// progress checks in the blobs of one artifact.
type progress struct {
	r        *run
	artifact string
	total    int
	index    int
	done     map[v1.Hash]bool

	uploaded, mounted, skipped int
	bytes                      int64
}

// checkin is the message of a blob's check-in.
type checkin struct {
	Artifact string `json:"artifact"`
	Blob     string `json:"blob"`
	Index    int    `json:"index"`
	Total    int    `json:"total"`
	Bytes    int64  `json:"bytes"`
	Skipped  bool   `json:"skipped"`
	Mounted  bool   `json:"mounted,omitempty"`
}

// report checks in blob b (once per artifact): bytes uploaded, or
// skipped because the destination had it, or mounted from another
// repository.
func (p *progress) report(b v1.Descriptor, bytes int64, skipped, mounted bool) {
	if p.done[b.Digest] {
		return
	}
	p.done[b.Digest] = true
	p.index++
	switch {
	case mounted:
		p.mounted++
		p.r.sum.BlobsMounted++
	case skipped:
		p.skipped++
		p.r.sum.BlobsSkipped++
	default:
		p.uploaded++
		p.bytes += bytes
		p.r.sum.BlobsUploaded++
		p.r.sum.Bytes += bytes
	}
	msg, _ := json.Marshal(checkin{Artifact: p.artifact, Blob: b.Digest.String(), Index: p.index, Total: p.total, Bytes: bytes, Skipped: skipped || mounted, Mounted: mounted})
	_ = p.r.job.Checkin(string(msg))
}
