package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/plugins/internal/oci"
)

const (
	// attempts is how often one blob (or one chunk) is tried before the
	// artifact fails.
	attempts = 3
	// backoff is the wait after the first failed attempt; it doubles.
	backoff = 250 * time.Millisecond
	// drainLimit bounds what is read of an answer's body nobody needs.
	drainLimit = 64 << 10
)

// blobResult is what became of one blob.
type blobResult struct {
	bytes   int64
	skipped bool // the destination repository had it
	mounted bool // mounted from another repository of the destination
}

// blob makes the destination repository dst hold blob b of the source
// repository src: nothing when it has it, a mount when another
// repository of the destination does, an upload otherwise, each tried a
// few times with backoff.
func (r *run) blob(ctx context.Context, src, dst name.Repository, b v1.Descriptor) (blobResult, error) {
	client, err := r.pusher(ctx, dst)
	if err != nil {
		return blobResult{}, err
	}
	var last error
	wait := backoff
	for attempt := 1; attempt <= attempts; attempt++ {
		res, err := r.blobOnce(ctx, client, src, dst, b)
		if err == nil {
			r.have[b.Digest] = dst.RepositoryStr()
			return res, nil
		}
		last = err
		if ctx.Err() != nil || !retryable(err) || attempt == attempts {
			break
		}
		r.log.Warn(fmt.Sprintf("blob %s, attempt %d of %d: %v; trying again in %s", b.Digest, attempt, attempts, err, wait))
		if err := sleep(ctx, wait); err != nil {
			return blobResult{}, err
		}
		wait *= 2
	}
	return blobResult{}, fmt.Errorf("blob %s: %w", b.Digest, last)
}

func (r *run) blobOnce(ctx context.Context, client *http.Client, src, dst name.Repository, b v1.Descriptor) (blobResult, error) {
	blobURL := r.dst.URL("/v2/" + dst.RepositoryStr() + "/blobs/" + b.Digest.String())
	resp, err := r.do(ctx, client, http.MethodHead, blobURL, nil, nil, -1)
	if err != nil {
		return blobResult{}, r.dst.Wrap("HEAD blob", err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return blobResult{skipped: true}, nil
	case http.StatusNotFound:
	default:
		return blobResult{}, r.dst.Wrap("HEAD blob", transport.CheckError(resp, http.StatusOK, http.StatusNotFound))
	}
	q := url.Values{}
	from, mountable := r.have[b.Digest]
	if mountable && from != dst.RepositoryStr() {
		q.Set("mount", b.Digest.String())
		q.Set("from", from)
	}
	start := r.dst.URL("/v2/" + dst.RepositoryStr() + "/blobs/uploads/")
	if len(q) > 0 {
		start += "?" + q.Encode()
	}
	resp, err = r.do(ctx, client, http.MethodPost, start, nil, nil, 0)
	if err != nil {
		return blobResult{}, r.dst.Wrap("start the upload", err)
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusCreated:
		if mountable {
			return blobResult{mounted: true}, nil
		}
		return blobResult{}, fmt.Errorf("start the upload: the registry answered 201 Created without a mount")
	case http.StatusAccepted:
	default:
		return blobResult{}, r.dst.Wrap("start the upload", transport.CheckError(resp, http.StatusAccepted, http.StatusCreated))
	}
	loc, err := location(resp)
	if err != nil {
		return blobResult{}, err
	}
	layer, err := remote.Layer(src.Digest(b.Digest.String()), r.src.Options(ctx)...)
	if err != nil {
		return blobResult{}, r.src.Wrap("open the blob", err)
	}
	rc, err := layer.Compressed() // verifies the digest as it is read
	if err != nil {
		return blobResult{}, r.src.Wrap("GET blob", err)
	}
	defer rc.Close()
	body := &limited{ctx: ctx, r: rc, lim: r.lim, burst: r.burst}
	if r.pl.copyByChunk {
		err = r.chunked(ctx, client, loc, b, body)
	} else {
		err = r.finish(ctx, client, loc, b, body, b.Size)
	}
	if err != nil {
		return blobResult{}, err
	}
	return blobResult{bytes: body.n}, nil
}

// chunked uploads body in chunks of the plan's size: a PATCH with
// Content-Range each, tried again on a failure the registry did not take
// in, then the closing PUT.
func (r *run) chunked(ctx context.Context, client *http.Client, loc *url.URL, b v1.Descriptor, body io.Reader) error {
	buf := make([]byte, r.pl.chunkSize)
	var offset int64
	for {
		n, rerr := io.ReadFull(body, buf)
		if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) && !errors.Is(rerr, io.EOF) {
			return r.src.Wrap("GET blob", rerr)
		}
		if n > 0 {
			next, err := r.patch(ctx, client, loc, buf[:n], offset)
			if err != nil {
				return err
			}
			loc, offset = next, offset+int64(n)
		}
		if rerr != nil {
			break
		}
	}
	if offset != b.Size {
		return fmt.Errorf("the source's blob has %d bytes, its descriptor says %d", offset, b.Size)
	}
	return r.finish(ctx, client, loc, b, nil, 0)
}

// patch sends one chunk at offset and returns the upload's next location.
// A chunk the registry did not take in (it says so when asked for the
// upload's state) is sent again, a few times.
func (r *run) patch(ctx context.Context, client *http.Client, loc *url.URL, chunk []byte, offset int64) (*url.URL, error) {
	end := offset + int64(len(chunk)) - 1
	hdr := http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("%d-%d", offset, end)},
	}
	wait := backoff
	for attempt := 1; ; attempt++ {
		resp, err := r.do(ctx, client, http.MethodPatch, loc.String(), hdr, bytes.NewReader(chunk), int64(len(chunk)))
		if err == nil {
			drain(resp)
			if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusNoContent {
				return location(resp)
			}
			err = transport.CheckError(resp, http.StatusAccepted)
		}
		err = r.dst.Wrap(fmt.Sprintf("PATCH bytes %d-%d", offset, end), err)
		if ctx.Err() != nil || !retryable(err) || attempt == attempts {
			return nil, err
		}
		// Where is the upload? Resume from there when it is this chunk's
		// start (or end); anything else fails the attempt of the blob.
		got, serr := r.uploaded(ctx, client, loc)
		switch {
		case serr != nil:
			return nil, err
		case got == end+1:
			return loc, nil
		case got != offset:
			return nil, fmt.Errorf("%w; the registry holds %d bytes of the upload, neither %d nor %d", err, got, offset, end+1)
		}
		r.log.Warn(fmt.Sprintf("chunk %d-%d, attempt %d of %d: %v; sending it again in %s", offset, end, attempt, attempts, err, wait))
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait *= 2
	}
}

// uploaded asks how many bytes the registry holds of the upload at loc.
func (r *run) uploaded(ctx context.Context, client *http.Client, loc *url.URL) (int64, error) {
	resp, err := r.do(ctx, client, http.MethodGet, loc.String(), nil, nil, -1)
	if err != nil {
		return 0, err
	}
	drain(resp)
	if resp.StatusCode != http.StatusNoContent {
		return 0, transport.CheckError(resp, http.StatusNoContent)
	}
	rg := resp.Header.Get("Range")
	_, last, ok := strings.Cut(rg, "-")
	n, err := strconv.ParseInt(last, 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("the registry's Range %q does not parse", rg)
	}
	if n == 0 {
		return 0, nil // "0-0": nothing yet (chunks are at least 1 KiB)
	}
	return n + 1, nil
}

// finish closes the upload at loc with a PUT of the digest, and with the
// blob's bytes as its body unless they were sent in chunks.
func (r *run) finish(ctx context.Context, client *http.Client, loc *url.URL, b v1.Descriptor, body io.Reader, size int64) error {
	u := *loc
	q := u.Query()
	q.Set("digest", b.Digest.String())
	u.RawQuery = q.Encode()
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := r.do(ctx, client, http.MethodPut, u.String(), hdr, body, size)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return r.dst.Wrap("PUT blob", err)
	}
	drain(resp)
	return r.dst.Wrap("PUT blob", transport.CheckError(resp, http.StatusCreated))
}

// do sends a request with the run's context; size is the body's length
// (-1 and 0 with a nil body send none).
func (r *run) do(ctx context.Context, client *http.Client, method, u string, hdr http.Header, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if size >= 0 {
		req.ContentLength = size
	}
	if body == nil || size == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = fmt.Errorf("%s: %w", method, uerr.Err) // the URL holds the upload's state
		}
		return nil, err
	}
	return resp, nil
}

// pusher is the authenticated client of a destination repository: push
// and pull on it, pull on those blobs may be mounted from.
func (r *run) pusher(ctx context.Context, repo name.Repository) (*http.Client, error) {
	if c, ok := r.pushers[repo.RepositoryStr()]; ok {
		return c, nil
	}
	scopes := []string{repo.Scope(transport.PushScope)}
	seen := map[string]bool{repo.RepositoryStr(): true}
	for _, from := range r.have {
		if !seen[from] {
			seen[from] = true
			if fr, err := r.dst.Repository(from); err == nil {
				scopes = append(scopes, fr.Scope(transport.PullScope))
			}
		}
	}
	rt, err := r.dst.Transport(ctx, scopes...)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Transport: rt}
	r.pushers[repo.RepositoryStr()] = c
	return c, nil
}

// location is the Location of an upload's answer, resolved against its
// request's URL.
func location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("the registry's answer %d to the upload has no Location", resp.StatusCode)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("the registry's upload Location does not parse: %v", err)
	}
	return u, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	resp.Body.Close()
}

// retryable says whether another attempt may do better: not for a stop,
// a refused credential or address, or an answer the registry would give
// again (a 4xx but 408 and 429).
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || permanent(err) || errors.Is(err, oci.ErrAuth) {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		c := terr.StatusCode
		return c >= 500 || c == http.StatusRequestTimeout || c == http.StatusTooManyRequests
	}
	return true
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
