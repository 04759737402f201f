package daemon_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/events"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/registrytest"
)

// The tests of this file run plugins/replication through a real host and
// its REST API, between real docker-registry servers (Debian's
// distribution 2.8) with htpasswd Basic auth, on loopback.

// replWait bounds each wait of these tests.
const replWait = 30 * time.Second

// replHost starts a host, on a namespace of its own, that serves
// REPLICATION and lets it call loopback registries.
func replHost(t *testing.T) *hosttest.Host {
	t.Helper()
	return hosttest.NewCluster(t, "replication").Start(t, func(c *config.Config) {
		c.PluginConfig = map[string]map[string]any{"replication": {"allowed_networks": []any{"127.0.0.0/8"}}}
	})
}

// replResource is a resource parameter as Harbor's core sends it (a JSON
// string): the registry with its credential, a repository, one artifact
// per list of tags.
func replResource(reg *registrytest.Registry, password, repo string, tags ...[]string) string {
	arts := []any{}
	for _, ts := range tags {
		arts = append(arts, map[string]any{"type": "image", "tags": ts})
	}
	md := map[string]any{"artifacts": arts}
	if repo != "" {
		md["repository"] = map[string]any{"name": repo}
	}
	raw, _ := json.Marshal(map[string]any{
		"type": "image",
		"registry": map[string]any{"id": 2, "name": "r", "type": "docker-registry", "url": reg.URL(), "insecure": true,
			"credential": map[string]any{"type": "basic", "access_key": reg.Username(), "access_secret": password}},
		"metadata": md,
	})
	return string(raw)
}

// replCheckin is a blob's check-in.
type replCheckin struct {
	Artifact string `json:"artifact"`
	Blob     string `json:"blob"`
	Index    int    `json:"index"`
	Total    int    `json:"total"`
	Bytes    int64  `json:"bytes"`
	Skipped  bool   `json:"skipped"`
	Mounted  bool   `json:"mounted"`
}

// replRun submits a REPLICATION job and waits for its success at the
// first run, reading every check-in it made from the host's events.
func replRun(t *testing.T, h *hosttest.Host, sub *events.Subscription, params map[string]any) (*job.Stats, []replCheckin) {
	t.Helper()
	st := h.Submit(t, "REPLICATION", params, nil)
	var cis []replCheckin
	for range 1000 {
		ev := hosttest.WaitEvent(t, sub, replWait, "the end of "+st.ID, func(e job.Event) bool {
			return e.JobID == st.ID && (e.Reason == job.CheckedIn || e.Reason == job.Failed || e.Reason == job.RetryWait || e.To.Final())
		})
		if ev.Reason == job.Failed || ev.Reason == job.RetryWait {
			t.Fatalf("job %s failed a run: %s\nlog:\n%s", st.ID, ev.Detail, h.LogText(t, st.ID))
		}
		if ev.To.Final() && ev.Reason != job.CheckedIn {
			if ev.To != job.Success {
				t.Fatalf("job %s ended %s: %s\nlog:\n%s", st.ID, ev.To, ev.Detail, h.LogText(t, st.ID))
			}
			return h.Get(t, st.ID), cis
		}
		var ci replCheckin
		if err := json.Unmarshal([]byte(ev.CheckIn), &ci); err != nil {
			t.Fatalf("check-in %q is not JSON: %v", ev.CheckIn, err)
		}
		cis = append(cis, ci)
	}
	t.Fatalf("job %s: more than 1000 check-ins", st.ID)
	return nil, nil
}

// replBlobBytes is the size of img's blobs: its config and layers.
func replBlobBytes(t *testing.T, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func replImage(t *testing.T, layerBytes int64, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(layerBytes, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Two tagged images and an image index, with all its images, arrive with
// their digests and validate; a rerun skips every blob and tag and writes
// nothing.
func TestReplicationCopiesImagesAndAnIndexThenARerunSkipsEverything(t *testing.T) {
	t.Parallel()
	src, dst := registrytest.Start(t), registrytest.Start(t)
	h := replHost(t)
	sub := h.Subscribe(t)
	want := map[string]string{
		"v1":    src.PushRandom(t, "library/app:v1", 2),
		"v2":    src.PushRandom(t, "library/app:v2", 3),
		"multi": src.PushIndex(t, "library/app:multi", registrytest.RandomIndex(t, 3, 2)),
	}
	params := map[string]any{
		"src_resource": replResource(src, src.Password(), "library/app", []string{"v1", "v2"}, []string{"multi"}),
		"dst_resource": replResource(dst, dst.Password(), "mirror/app", []string{"v1", "v2"}, []string{"multi"}),
	}
	st, cis := replRun(t, h, sub, params)
	for tag, d := range want {
		if got := dst.Digest(t, "mirror/app:"+tag); got != d {
			t.Fatalf("mirror/app:%s is %s, want %s", tag, got, d)
		}
		dst.Validate(t, "mirror/app:"+tag)
	}
	// Blobs: 1+2 and 1+3 of the images, 3×(1+2) of the index's.
	if len(cis) != 3+4+9 {
		t.Fatalf("%d check-ins, want 16: %+v", len(cis), cis)
	}
	for _, ci := range cis {
		if ci.Skipped || ci.Bytes == 0 || ci.Index < 1 || ci.Index > ci.Total || !strings.HasPrefix(ci.Blob, "sha256:") {
			t.Fatalf("first run's check-in %+v", ci)
		}
	}
	var last replCheckin
	if err := json.Unmarshal([]byte(st.CheckIn), &last); err != nil || last.Artifact != "library/app:multi" || last.Index != 9 || last.Total != 9 {
		t.Fatalf("the stats' check_in %q", st.CheckIn)
	}
	if log := h.LogText(t, st.ID); !strings.Contains(log, "library/app:v1 to "+dst.Host()+"/mirror/app:v1: copied image "+want["v1"]) ||
		!strings.Contains(log, "copied index of 3 manifests "+want["multi"]) {
		t.Fatalf("the job's log does not tell each artifact:\n%s", log)
	}
	if n := dst.Count("PUT", "/manifests/"); n != 3+3 {
		t.Fatalf("%d manifests pushed, want 6", n)
	}

	dst.Reset()
	st, cis = replRun(t, h, sub, params)
	if len(cis) != 16 {
		t.Fatalf("rerun: %d check-ins, want 16", len(cis))
	}
	for _, ci := range cis {
		if !ci.Skipped || ci.Bytes != 0 {
			t.Fatalf("rerun's check-in %+v, want skipped", ci)
		}
	}
	if w := dst.Writes(); len(w) != 0 {
		t.Fatalf("the rerun wrote %v", w)
	}
	if log := h.LogText(t, st.ID); strings.Count(log, "skipped: the destination tag is sha256:") != 3 {
		t.Fatalf("the rerun's log does not say each tag was skipped:\n%s", log)
	}
}

// With no artifacts listed, every repository and tag the filters pass is
// copied, and a blob another destination repository holds is mounted,
// not uploaded.
func TestReplicationEveryRepositoryWithFiltersMountsSharedBlobs(t *testing.T) {
	t.Parallel()
	src, dst := registrytest.Start(t), registrytest.Start(t)
	h := replHost(t)
	sub := h.Subscribe(t)
	base := registrytest.RandomImage(t, 2)
	a := src.Push(t, "team/a:v1", base)
	b := src.Push(t, "team/b:v1", registrytest.Extend(t, base, 1))
	src.PushRandom(t, "team/a:v1-rc1", 1)
	src.PushRandom(t, "other/c:v1", 1)
	params := map[string]any{
		"src_resource": replResource(src, src.Password(), ""),
		"dst_resource": replResource(dst, dst.Password(), ""),
		"filters": []any{
			map[string]any{"type": "name", "value": "team/*"},
			map[string]any{"type": "tag", "value": "*-rc*", "decoration": "excludes"},
		},
	}
	_, cis := replRun(t, h, sub, params)
	if dst.Digest(t, "team/a:v1") != a || dst.Digest(t, "team/b:v1") != b {
		t.Fatal("the matching tags were not copied")
	}
	dst.Validate(t, "team/b:v1")
	if dst.Exists(t, "team/a:v1-rc1") || dst.Exists(t, "other/c:v1") {
		t.Fatal("a filtered tag was copied")
	}
	mounted := 0
	for _, ci := range cis {
		if ci.Mounted {
			mounted++
		}
	}
	// team/b shares base's two layers with team/a, copied first.
	if mounted != 2 {
		t.Fatalf("%d blobs mounted, want 2: %+v", mounted, cis)
	}
	created := 0
	for _, q := range dst.Requests() {
		if q.Method == http.MethodPost && strings.HasPrefix(q.Path, "/v2/team/b/blobs/uploads") && q.Status == http.StatusCreated {
			created++
		}
	}
	if created != 2 {
		t.Fatalf("the registry mounted %d blobs, want 2: %v", created, dst.Requests())
	}
}

// override false keeps a differing destination tag; true replaces it.
func TestReplicationOverride(t *testing.T) {
	t.Parallel()
	src, dst := registrytest.Start(t), registrytest.Start(t)
	h := replHost(t)
	sub := h.Subscribe(t)
	want := src.PushRandom(t, "app:v1", 1)
	theirs := dst.PushRandom(t, "app:v1", 1)
	params := map[string]any{
		"src_resource": replResource(src, src.Password(), "app", []string{"v1"}),
		"dst_resource": replResource(dst, dst.Password(), "app", []string{"v1"}),
	}
	st, _ := replRun(t, h, sub, params)
	if got := dst.Digest(t, "app:v1"); got != theirs {
		t.Fatalf("override false: app:v1 is %s, want it kept at %s", got, theirs)
	}
	if log := h.LogText(t, st.ID); !strings.Contains(log, "override is false: kept") {
		t.Fatalf("the log does not say the tag was kept:\n%s", log)
	}
	var dstRes map[string]any
	if err := json.Unmarshal([]byte(params["dst_resource"].(string)), &dstRes); err != nil {
		t.Fatal(err)
	}
	dstRes["override"] = true
	raw, _ := json.Marshal(dstRes)
	params["dst_resource"] = string(raw)
	replRun(t, h, sub, params)
	if got := dst.Digest(t, "app:v1"); got != want {
		t.Fatalf("override true: app:v1 is %s, want %s", got, want)
	}
	dst.Validate(t, "app:v1")
}

// copy_by_chunk with a small chunk_size uploads in several PATCHes and
// the image is valid.
func TestReplicationCopyByChunk(t *testing.T) {
	t.Parallel()
	src, dst := registrytest.Start(t), registrytest.Start(t)
	h := replHost(t)
	sub := h.Subscribe(t)
	want := src.Push(t, "app:v1", replImage(t, 200<<10, 2))
	params := map[string]any{
		"src_resource":  replResource(src, src.Password(), "app", []string{"v1"}),
		"dst_resource":  replResource(dst, dst.Password(), "app", []string{"v1"}),
		"copy_by_chunk": true,
		"chunk_size":    64 << 10,
	}
	replRun(t, h, sub, params)
	if got := dst.Digest(t, "app:v1"); got != want {
		t.Fatalf("app:v1 is %s, want %s", got, want)
	}
	dst.Validate(t, "app:v1")
	// Two layers of about 200 KiB in 64 KiB chunks: 4 each.
	if n := dst.Count("PATCH", "/blobs/uploads/"); n < 8 {
		t.Fatalf("the registry saw %d PATCH requests, want at least 8: %v", n, dst.Requests())
	}
}

// speed limits the whole job: a copy of about 2 MiB at 8000 kbit/s
// (1 MB/s) takes at least the time that rate implies.
func TestReplicationSpeed(t *testing.T) {
	t.Parallel()
	src, dst := registrytest.Start(t), registrytest.Start(t)
	h := replHost(t)
	sub := h.Subscribe(t)
	img := replImage(t, 1<<20, 2)
	want := src.Push(t, "app:v1", img)
	const kbits = 8000
	bytesPerSecond := float64(kbits) * 1000 / 8
	// The limiter may let its burst (32 KiB) through at once.
	least := time.Duration((float64(replBlobBytes(t, img)) - 32<<10) / bytesPerSecond * float64(time.Second))
	params := map[string]any{
		"src_resource": replResource(src, src.Password(), "app", []string{"v1"}),
		"dst_resource": replResource(dst, dst.Password(), "app", []string{"v1"}),
		"speed":        kbits,
	}
	start := time.Now()
	replRun(t, h, sub, params)
	if took := time.Since(start); took < least {
		t.Fatalf("the copy took %s, less than the %s its speed allows", took, least)
	}
	if got := dst.Digest(t, "app:v1"); got != want {
		t.Fatalf("app:v1 is %s, want %s", got, want)
	}
}

// A stop after the first blob, inside the upload of the second, ends the
// job Stopped within a second, and the destination tag does not exist.
func TestReplicationStopAfterTheFirstBlob(t *testing.T) {
	t.Parallel()
	src, dst := registrytest.Start(t), registrytest.Start(t)
	h := replHost(t)
	src.Push(t, "app:v1", replImage(t, 512<<10, 2))
	params := map[string]any{
		"src_resource": replResource(src, src.Password(), "app", []string{"v1"}),
		"dst_resource": replResource(dst, dst.Password(), "app", []string{"v1"}),
		"speed":        800, // 100 kB/s: each layer takes about 5 s
	}
	st := h.Submit(t, "REPLICATION", params, nil)
	h.Wait(t, st.ID, replWait, "the first blob's check-in", func(s *job.Stats) bool {
		var ci replCheckin
		return json.Unmarshal([]byte(s.CheckIn), &ci) == nil && ci.Index == 1
	})
	start := time.Now()
	if r := h.Action(t, st.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	h.WaitStatus(t, st.ID, job.Stopped, replWait)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the job took %s to stop", took)
	}
	if st := h.Get(t, st.ID); st.Status != job.Stopped {
		t.Fatalf("the job is %s", st.Status)
	}
	if dst.Exists(t, "app:v1") {
		t.Fatal("the destination tag exists")
	}
	if n := dst.Count("PUT", "/manifests/"); n != 0 {
		t.Fatalf("%d manifests were pushed", n)
	}
}

// A wrong password ends the job in Error, saying authentication failed,
// and the password shows in no log, check-in, error or stats.
func TestReplicationWrongPasswordFailsAndIsNeverShown(t *testing.T) {
	t.Parallel()
	src, dst := registrytest.Start(t), registrytest.Start(t)
	h := replHost(t)
	sub := h.Subscribe(t)
	src.PushRandom(t, "app:v1", 1)
	const wrong = "Wr0ng-passw0rd-4-replication"
	params := map[string]any{
		"src_resource": replResource(src, src.Password(), "app", []string{"v1"}),
		"dst_resource": replResource(dst, wrong, "app", []string{"v1"}),
	}
	st := h.Submit(t, "REPLICATION", params, nil)
	ev := hosttest.WaitEvent(t, sub, replWait, "the failure of "+st.ID, func(e job.Event) bool {
		return e.JobID == st.ID && e.Reason == job.Failed
	})
	if ev.To != job.Error || !strings.Contains(ev.Detail, "authentication failed") || !strings.Contains(ev.Detail, dst.Host()) {
		t.Fatalf("the failure: %s %q", ev.To, ev.Detail)
	}
	final := h.WaitStatus(t, st.ID, job.Error, replWait)
	log := h.LogText(t, st.ID)
	if !strings.Contains(log, "authentication failed") {
		t.Fatalf("the job's log does not say authentication failed:\n%s", log)
	}
	// After its retries: three runs (MaxFails 3), as Harbor's.
	if n := strings.Count(log, "retrying in"); n != 2 {
		t.Errorf("the job was retried %d times; want 2 (three runs):\n%s", n, log)
	}
	// Everything the API tells of the job, its parameters included: they
	// are redacted.
	r := h.Do(t, http.MethodGet, "/api/v1/jobs/"+st.ID, hosttest.Auth, nil)
	shown := r.Body
	for what, text := range map[string]string{"job log": log, "stats": string(shown), "check-in": final.CheckIn, "error": ev.Detail, "host log": h.Log.String()} {
		for _, secret := range []string{wrong, src.Password()} {
			if strings.Contains(text, secret) {
				t.Fatalf("the %s shows a password:\n%s", what, text)
			}
		}
	}
	if dst.Exists(t, "app:v1") {
		t.Fatal("the destination tag exists")
	}
}

// Validate's refusals reach the caller as a 400 that names the parameter.
func TestReplicationValidateThroughTheAPI(t *testing.T) {
	t.Parallel()
	h := replHost(t)
	good := func() map[string]any {
		return map[string]any{
			"src_resource": `{"registry":{"type":"docker-registry","url":"https://src.example.com"},"metadata":{"repository":{"name":"a"},"artifacts":[{"tags":["v1","v2"]}]}}`,
			"dst_resource": `{"registry":{"type":"harbor","url":"https://dst.example.com"},"metadata":{"repository":{"name":"b"},"artifacts":[{"tags":["v1","v2"]}]}}`,
		}
	}
	set := func(k string, v any) map[string]any {
		p := good()
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"MissingResource", set("dst_resource", nil), `parameter "dst_resource" is required`},
		{"MalformedResource", set("src_resource", "{"), `parameter "src_resource" must be a resource`},
		{"UnknownRegistryType", set("src_resource", `{"registry":{"type":"quay","url":"https://q.example.com"},"metadata":{"repository":{"name":"a"}}}`),
			`parameter "src_resource.registry.type" must be "docker-registry" or "harbor", got "quay"`},
		{"URLNotHTTP", set("dst_resource", `{"registry":{"type":"harbor","url":"ftp://dst.example.com"},"metadata":{"repository":{"name":"b"}}}`),
			`parameter "dst_resource.registry.url" must be an http or https URL, got one with scheme "ftp"`},
		{"InvalidRepository", set("src_resource", `{"registry":{"type":"docker-registry","url":"https://src.example.com"},"metadata":{"repository":{"name":"A_"},"artifacts":[{"tags":["v1","v2"]}]}}`),
			`parameter "src_resource.metadata.repository.name" must be a repository name`},
		{"InvalidTag", set("src_resource", `{"registry":{"type":"docker-registry","url":"https://src.example.com"},"metadata":{"repository":{"name":"a"},"artifacts":[{"tags":["v1","bad tag"]}]}}`),
			`parameter "src_resource.metadata.artifacts[0].tags[1]" must be a tag`},
		{"TagCountMismatch", set("dst_resource", `{"registry":{"type":"harbor","url":"https://dst.example.com"},"metadata":{"repository":{"name":"b"},"artifacts":[{"tags":["v1"]}]}}`),
			`parameter "dst_resource.metadata.artifacts[0].tags" must have as many tags as the source's artifact (2), got 1`},
		{"SpeedNotInteger", set("speed", 2.5), `parameter "speed" must be a whole number`},
		{"SpeedNegative", set("speed", -8), `parameter "speed" must be a whole number from -1`},
		{"ChunkSizeOutOfRange", set("chunk_size", 10), `parameter "chunk_size" must be a whole number from 1024 to 268435456, got 10`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("REPLICATION", tc.params, nil))
			var body struct {
				Code    int    `json:"code"`
				Details string `json:"details"`
			}
			r.JSON(t, &body)
			if r.Status != http.StatusBadRequest || !strings.Contains(body.Details, tc.want) {
				t.Fatalf("submit: %d %s, want 400 with %q", r.Status, r.Body, tc.want)
			}
		})
	}
}
