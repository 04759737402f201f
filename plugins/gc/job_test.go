package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/sdk/sdktest"
)

// fixture writes a registry's storage by hand, in distribution's layout,
// for the unit tests (the end-to-end tests in host/internal/daemon use a
// real registry and distribution's own collector).
type fixture struct {
	t    *testing.T
	root string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, root: t.TempDir()}
	f.mkdir("docker/registry/v2/blobs")
	return f
}

func (f *fixture) mkdir(rel string) string {
	p := filepath.Join(f.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(p, 0o755); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) write(rel string, content []byte) {
	dir := f.mkdir(filepath.ToSlash(filepath.Dir(filepath.FromSlash(rel))))
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(rel)), content, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// blob stores content in the blob store.
func (f *fixture) blob(content []byte) digest.Digest {
	d := digest.FromBytes(content)
	f.write(strings.TrimPrefix(blobData(d), "/"), content)
	return d
}

func (f *fixture) random() digest.Digest {
	b := make([]byte, 512)
	_, _ = rand.Read(b)
	return f.blob(b)
}

func (f *fixture) layerLink(repo string, d digest.Digest) {
	f.write(strings.TrimPrefix(layerLinkDir(repo, d), "/")+"/link", []byte(d))
}

func (f *fixture) revision(repo string, d digest.Digest) {
	f.write(strings.TrimPrefix(revisionDir(repo, d), "/")+"/link", []byte(d))
}

func (f *fixture) tag(repo, tag string, d digest.Digest) {
	f.write(strings.TrimPrefix(tagCurrentLink(repo, tag), "/"), []byte(d))
	f.write(strings.TrimPrefix(tagIndexEntry(repo, tag, d), "/")+"/link", []byte(d))
}

// image pushes an image of the given layers (new random ones when nil)
// into repo, untagged, and returns its manifest digest and its blobs.
func (f *fixture) image(repo string, layers ...digest.Digest) (digest.Digest, []digest.Digest) {
	if len(layers) == 0 {
		layers = []digest.Digest{f.random(), f.random()}
	}
	cfg := f.random()
	blobs := append([]digest.Digest{cfg}, layers...)
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 512}}
	var ls []map[string]any
	for _, l := range layers {
		ls = append(ls, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l, "size": 512})
	}
	m["layers"] = ls
	raw, _ := json.Marshal(m)
	d := f.blob(raw)
	for _, b := range blobs {
		f.layerLink(repo, b)
	}
	f.revision(repo, d)
	return d, blobs
}

// index pushes an index of children into repo, untagged.
func (f *fixture) index(repo string, children ...digest.Digest) digest.Digest {
	var ms []map[string]any
	for _, c := range children {
		ms = append(ms, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": c, "size": 400})
	}
	raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms})
	d := f.blob(raw)
	f.revision(repo, d)
	return d
}

func (f *fixture) exists(p string) bool {
	_, err := os.Stat(filepath.Join(f.root, filepath.FromSlash(strings.TrimPrefix(p, "/"))))
	return err == nil
}

// age sets the times of every file below root back by d.
func (f *fixture) age(d time.Duration) {
	old := time.Now().Add(-d)
	err := filepath.Walk(f.root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) size(d digest.Digest) int64 {
	fi, err := os.Stat(filepath.Join(f.root, filepath.FromSlash(strings.TrimPrefix(blobData(d), "/"))))
	if err != nil {
		f.t.Fatal(err)
	}
	return fi.Size()
}

// scenario is the unit tests' registry: a:v1 overwritten (old is
// untagged), a:v2 sharing a layer of a:v1, a:multi an index, and b's
// image whose manifest was deleted (its revision link gone).
type scenario struct {
	f                   *fixture
	old, cur, v2, multi digest.Digest
	oldBlobs, curBlobs  []digest.Digest
	children            []digest.Digest
	childBlobs          []digest.Digest
	deleted             digest.Digest
	deletedBlobs        []digest.Digest
}

func newScenario(t *testing.T) *scenario {
	s := &scenario{f: newFixture(t)}
	f := s.f
	s.old, s.oldBlobs = f.image("a")
	f.tag("a", "v1", s.old)
	s.cur, s.curBlobs = f.image("a")
	f.tag("a", "v1", s.cur) // a:v1 moves on; old keeps its index entry
	s.v2, _ = f.image("a", s.curBlobs[1], f.random())
	f.tag("a", "v2", s.v2)
	for range 2 {
		c, blobs := f.image("a")
		s.children = append(s.children, c)
		s.childBlobs = append(s.childBlobs, blobs...)
	}
	s.multi = s.f.index("a", s.children...)
	f.tag("a", "multi", s.multi)
	s.deleted, s.deletedBlobs = f.image("b")
	if err := os.RemoveAll(filepath.Join(f.root, filepath.FromSlash(strings.TrimPrefix(revisionDir("b", s.deleted), "/")))); err != nil {
		t.Fatal(err)
	}
	return s
}

// garbage are the blobs a collection with delete_untagged frees.
func (s *scenario) garbage() []digest.Digest {
	return append(append([]digest.Digest{s.old, s.deleted}, s.oldBlobs...), s.deletedBlobs...)
}

// kept are the blobs a tag reaches.
func (s *scenario) kept() []digest.Digest {
	out := append([]digest.Digest{s.cur, s.v2, s.multi}, s.curBlobs...)
	out = append(out, s.children...)
	return append(out, s.childBlobs...)
}

func (s *scenario) bytes(ds []digest.Digest) int64 {
	var n int64
	for _, d := range ds {
		n += s.f.size(d)
	}
	return n
}

func run(t *testing.T, params map[string]any, settings map[string]any) sdktest.Result {
	t.Helper()
	job, config := newPlugin()
	opts := []sdktest.Option{sdktest.WithPlugin(config)}
	if settings != nil {
		opts = append(opts, sdktest.WithConfig(settings))
	}
	return sdktest.Run(t, job, params, opts...)
}

// lastResult decodes the last check-in as Harbor's result.
func lastResult(t *testing.T, res sdktest.Result) result {
	t.Helper()
	if len(res.CheckIns) == 0 {
		t.Fatal("no check-in")
	}
	last := res.CheckIns[len(res.CheckIns)-1]
	var r result
	dec := json.NewDecoder(strings.NewReader(last))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the last check-in %q is not Harbor's result: %v", last, err)
	}
	return r
}

func TestValidate(t *testing.T) {
	t.Parallel()
	root := newFixture(t).root
	notRegistry := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg, []byte("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+root+"\n  delete:\n    enabled: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := filepath.Join(t.TempDir(), "s3.yml")
	if err := os.WriteFile(s3, []byte("version: 0.1\nstorage:\n  s3:\n    bucket: b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		params  map[string]any
		wantErr string // substring; "" is valid
	}{
		{"StorageRoot", map[string]any{"storage_root": root}, ""},
		{"RegistryConfig", map[string]any{"registry_config": cfg}, ""},
		{"Harbors", map[string]any{"storage_root": root, "delete_untagged": false, "dry_run": true, "workers": 10, "time_window": 0, "redis_url_reg": "redis://redis:6379/1"}, ""},
		{"FractionalWindow", map[string]any{"storage_root": root, "time_window": 0.5}, ""},
		{"RegistryURL", map[string]any{"storage_root": root, "registry_url": "https://registry.example:5000"}, ""},
		{"DryRunNotBool", map[string]any{"storage_root": root, "dry_run": "true"}, `parameter "dry_run" must be`},
		{"DeleteUntaggedNotBool", map[string]any{"storage_root": root, "delete_untagged": 1}, `parameter "delete_untagged" must be`},
		{"WorkersZero", map[string]any{"storage_root": root, "workers": 0}, `parameter "workers" must be`},
		{"WorkersEleven", map[string]any{"storage_root": root, "workers": 11}, `parameter "workers" must be`},
		{"WorkersFraction", map[string]any{"storage_root": root, "workers": 1.5}, `parameter "workers" must be`},
		{"WindowNegative", map[string]any{"storage_root": root, "time_window": -1}, `parameter "time_window" must be`},
		{"WindowString", map[string]any{"storage_root": root, "time_window": "2"}, `parameter "time_window" must be a number`},
		{"Neither", map[string]any{"dry_run": true}, `one of parameters "storage_root" and "registry_config" is required`},
		{"Both", map[string]any{"storage_root": root, "registry_config": cfg}, `parameters "storage_root" and "registry_config" exclude each other`},
		{"NotARegistry", map[string]any{"storage_root": notRegistry}, `parameter "storage_root" (` + notRegistry + `) does not look like a registry's storage: it has no docker/registry/v2`},
		{"Missing", map[string]any{"storage_root": "/nonexistent/registry"}, `parameter "storage_root" (/nonexistent/registry)`},
		{"Relative", map[string]any{"storage_root": "var/lib/registry"}, `parameter "storage_root" (var/lib/registry) must be an absolute path`},
		{"ConfigMissing", map[string]any{"registry_config": "/nonexistent/config.yml"}, `parameter "registry_config" (/nonexistent/config.yml)`},
		{"ConfigS3", map[string]any{"registry_config": s3}, `the registry stores with the "s3" driver`},
		{"ConfigNotRegistry", map[string]any{"registry_config": writeConfig(t, notRegistry)}, `does not look like a registry's storage`},
		{"RegistryURLScheme", map[string]any{"storage_root": root, "registry_url": "ftp://r.example"}, `parameter "registry_url" must be an http or https URL`},
		{"RegistryURLPath", map[string]any{"storage_root": root, "registry_url": "https://r.example/v2/"}, `parameter "registry_url" must be the registry's base URL`},
		{"Unknown", map[string]any{"storage_root": root, "purge": true}, `unknown parameter "purge"`},
	}
	job, config := newPlugin()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sdktest.Validate(t, job, tc.params, sdktest.WithPlugin(config))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", tc.params, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate(%v) = %v, want an error containing %q", tc.params, err, tc.wantErr)
			}
		})
	}
}

func writeConfig(t *testing.T, root string) string {
	p := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(p, []byte("storage:\n  filesystem:\n    rootdirectory: "+root+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A real run deletes the untagged image and the deleted one, keeps what
// a tag reaches (the index's children and the shared layer among it), and
// reports exactly what it freed.
func TestRunDeletesWhatNoTagReaches(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	// An upload in progress, which the sweep leaves alone.
	upload := "docker/registry/v2/repositories/a/_uploads/4a1f0e7c-upload"
	s.f.write(upload+"/data", []byte("partial"))
	s.f.write(upload+"/startedat", []byte("2026-01-01T00:00:00Z"))
	want := result{FreedSpace: s.bytes(s.garbage()), PurgedBlobs: len(s.garbage()), PurgedManifests: 1}
	res := run(t, map[string]any{"storage_root": s.f.root, "time_window": 0, "workers": 3}, nil)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	if got := lastResult(t, res); got != want {
		t.Fatalf("result = %+v, want %+v", got, want)
	}
	var out result
	if err := json.Unmarshal(res.Output, &out); err != nil || out != want {
		t.Fatalf("output = %s (%v), want %+v", res.Output, err, want)
	}
	for _, d := range s.garbage() {
		if s.f.exists(blobDir(d)) {
			t.Errorf("garbage blob %s is still there", d)
		}
	}
	for _, d := range s.kept() {
		if !s.f.exists(blobData(d)) {
			t.Errorf("blob %s, which a tag reaches, was deleted", d)
		}
	}
	for _, p := range []string{revisionDir("a", s.old), tagIndexEntry("a", "v1", s.old), layerLinkDir("a", s.oldBlobs[1]), layerLinkDir("b", s.deletedBlobs[0])} {
		if s.f.exists(p) {
			t.Errorf("%s is still there", p)
		}
	}
	for _, p := range []string{revisionDir("a", s.children[0]), tagIndexEntry("a", "v1", s.cur), layerLinkDir("a", s.curBlobs[1]), upload + "/data"} {
		if !s.f.exists(p) {
			t.Errorf("%s was deleted", p)
		}
	}
	logs := logText(res)
	for _, line := range []string{"deleted manifest repository=a digest=" + s.old.String(), "deleted blob digest=" + s.deleted.String(),
		"garbage collection result: " + res.CheckIns[len(res.CheckIns)-1]} {
		if !strings.Contains(logs, line) {
			t.Errorf("the log lacks %q:\n%s", line, logs)
		}
	}
	var phases []string
	for _, c := range res.CheckIns[:len(res.CheckIns)-1] {
		var p struct {
			Phase       string
			Done, Total int
		}
		if err := json.Unmarshal([]byte(c), &p); err != nil || p.Phase == "" {
			t.Fatalf("check-in %q is not progress", c)
		}
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	if strings.Join(phases, ",") != "scan,mark,sweep" {
		t.Fatalf("phases checked in: %v", phases)
	}
}

func logText(res sdktest.Result) string {
	var b strings.Builder
	for _, l := range res.Logs {
		b.WriteString(l.Level + " " + l.Message + "\n")
	}
	return b.String()
}

// A dry run reports the same result as the run would and deletes nothing.
func TestDryRunDeletesNothing(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	want := result{FreedSpace: s.bytes(s.garbage()), PurgedBlobs: len(s.garbage()), PurgedManifests: 1}
	res := run(t, map[string]any{"storage_root": s.f.root, "time_window": 0, "dry_run": true}, nil)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	if got := lastResult(t, res); got != want {
		t.Fatalf("result = %+v, want %+v", got, want)
	}
	for _, d := range append(s.garbage(), s.kept()...) {
		if !s.f.exists(blobData(d)) {
			t.Fatalf("the dry run deleted %s", d)
		}
	}
	if !s.f.exists(revisionDir("a", s.old)) {
		t.Fatal("the dry run deleted a manifest revision")
	}
	if logs := logText(res); !strings.Contains(logs, "blob eligible for deletion digest="+s.old.String()) ||
		!strings.Contains(logs, "manifest eligible for deletion repository=a digest="+s.old.String()) {
		t.Fatalf("the log does not list what is eligible:\n%s", logs)
	}
}

// Without delete_untagged every manifest revision is kept, with what it
// references: only the deleted image's blobs go.
func TestKeepUntagged(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	want := result{FreedSpace: s.bytes(append([]digest.Digest{s.deleted}, s.deletedBlobs...)), PurgedBlobs: 1 + len(s.deletedBlobs)}
	res := run(t, map[string]any{"storage_root": s.f.root, "time_window": 0, "delete_untagged": false}, nil)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	if got := lastResult(t, res); got != want {
		t.Fatalf("result = %+v, want %+v", got, want)
	}
	for _, d := range append([]digest.Digest{s.old}, s.oldBlobs...) {
		if !s.f.exists(blobData(d)) {
			t.Fatalf("untagged %s was deleted", d)
		}
	}
}

// The time window keeps what was written within it: a fresh registry
// loses nothing with the default window, and with the files aged past
// it, a run collects; a fresh push into an old registry is kept, even its
// blobs no manifest names yet.
func TestTimeWindow(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	res := run(t, map[string]any{"storage_root": s.f.root}, nil) // default window: 2 hours
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	if got := lastResult(t, res); got != (result{}) {
		t.Fatalf("a fresh registry: result = %+v, want nothing freed", got)
	}
	s.f.age(3 * time.Hour)
	// A push in progress: layers uploaded and linked, no manifest yet.
	pushing := []digest.Digest{s.f.random(), s.f.random()}
	for _, d := range pushing {
		s.f.layerLink("c", d)
	}
	fresh, freshBlobs := s.f.image("c") // untagged, but new
	res = run(t, map[string]any{"storage_root": s.f.root, "time_window": 2}, nil)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	if got := lastResult(t, res); got.PurgedBlobs != len(s.garbage()) || got.PurgedManifests != 1 {
		t.Fatalf("aged registry: result = %+v, want the %d garbage blobs and 1 manifest", got, len(s.garbage()))
	}
	for _, d := range append(append(pushing, fresh), freshBlobs...) {
		if !s.f.exists(blobData(d)) {
			t.Fatalf("fresh blob %s was deleted", d)
		}
	}
}

// A stop or a cancel during the sweep ends it before the next delete:
// some garbage is gone, some is left, and what a tag reaches is all there.
func TestStopMidSweep(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"Stop", "Cancel"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			stopMidSweep(t, func(r *sdktest.Running) {
				if op == "Stop" {
					r.Stop()
				} else {
					r.Cancel()
				}
			})
		})
	}
}

func stopMidSweep(t *testing.T, stop func(*sdktest.Running)) {
	s := newScenario(t)
	for range 40 {
		s.f.random()
	}
	total := 40 + len(s.garbage()) + 1 + len(s.oldBlobs) + len(s.deletedBlobs) // blobs, manifest, layer links
	job, config := newPlugin()
	r := sdktest.Start(t, job, map[string]any{"storage_root": s.f.root, "time_window": 0},
		sdktest.WithPlugin(config), sdktest.WithConfig(map[string]any{"deletes_per_second": 20}))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := r.WaitCheckin(ctx, fmt.Sprintf(`{"phase":"sweep","done":0,"total":%d}`, total)); err != nil {
		t.Fatal(err)
	}
	stop(r)
	res := r.Wait()
	if res.Kind == sdktest.Succeeded {
		t.Fatal("the stopped run succeeded")
	}
	left := 0
	for _, d := range s.garbage() {
		if s.f.exists(blobData(d)) {
			left++
		}
	}
	if left == 0 {
		t.Fatal("every garbage blob is gone: the stop did not stop the sweep")
	}
	for _, d := range s.kept() {
		if !s.f.exists(blobData(d)) {
			t.Fatalf("blob %s, which a tag reaches, was deleted", d)
		}
	}
	if logs := logText(res); !strings.Contains(logs, "the sweep ended early") {
		t.Fatalf("the log does not say the sweep ended early:\n%s", logs)
	}
}

// With registry_url, a registry that does not answer fails the job before
// anything is deleted.
func TestRegistryMustAnswerFirst(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	res := run(t, map[string]any{"storage_root": s.f.root, "time_window": 0, "registry_url": "http://" + addr}, nil)
	if res.Kind != sdktest.FailedPermanently || !strings.Contains(res.Err.Error(), "does not answer") {
		t.Fatalf("run = %s %v, want a permanent failure saying the registry does not answer", res.Kind, res.Err)
	}
	for _, d := range s.garbage() {
		if !s.f.exists(blobData(d)) {
			t.Fatalf("%s was deleted although the registry did not answer", d)
		}
	}
}

// A manifest a tag reaches that cannot be read fails the mark, and
// nothing is deleted.
// A time window too long for a duration keeps everything.
func TestCutoff(t *testing.T) {
	t.Parallel()
	now := time.Now()
	if got := cutoff(now, 2); !got.Equal(now.Add(-2 * time.Hour)) {
		t.Fatalf("cutoff(2h) = %v", got)
	}
	if got := cutoff(now, 1e300); !got.IsZero() {
		t.Fatalf("cutoff(1e300h) = %v, want the zero time", got)
	}
	if got := cutoff(now, 0); !got.Equal(now) {
		t.Fatalf("cutoff(0) = %v", got)
	}
}

func TestUnreadableManifestFailsBeforeSweep(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	broken := s.f.blob([]byte("not json"))
	s.f.revision("a", broken)
	s.f.tag("a", "broken", broken)
	res := run(t, map[string]any{"storage_root": s.f.root, "time_window": 0}, nil)
	if res.Kind == sdktest.Succeeded || !strings.Contains(res.Err.Error(), "mark") {
		t.Fatalf("run = %s %v, want a failed mark", res.Kind, res.Err)
	}
	if !s.f.exists(blobData(s.old)) {
		t.Fatal("the run deleted garbage after a failed mark")
	}
}

// Harbor's core submits GC with its own parameters only: the storage and
// the registry URL then come from the plugin's settings.
func TestSettingsGiveTheStorageOfAJobThatNamesNone(t *testing.T) {
	t.Parallel()
	root := newFixture(t).root
	harbors := map[string]any{"delete_untagged": true, "dry_run": true, "workers": 2, "time_window": 0, "redis_url_reg": "redis://redis:6379/1"}
	tests := []struct {
		name     string
		settings map[string]any
		params   map[string]any
		wantErr  string
	}{
		{"StorageRootSetting", map[string]any{"storage_root": root}, harbors, ""},
		{"RegistryConfigSetting", map[string]any{"registry_config": writeConfig(t, root)}, harbors, ""},
		{"ParametersWin", map[string]any{"storage_root": "/nonexistent"}, map[string]any{"storage_root": root}, ""},
		{"NoSetting", nil, harbors, `(or set one in the plugin's settings, plugin_config.gc`},
		{"SettingNotARegistry", map[string]any{"storage_root": t.TempDir()}, harbors, "does not look like a registry's storage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job, config := newPlugin()
			opts := []sdktest.Option{sdktest.WithPlugin(config)}
			if tc.settings != nil {
				opts = append(opts, sdktest.WithConfig(tc.settings))
			}
			err := sdktest.Validate(t, job, tc.params, opts...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				if res := sdktest.Run(t, job, tc.params, opts...); res.Kind != sdktest.Succeeded {
					t.Fatalf("Run = %s %v", res.Kind, res.Err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
	// Settings that contradict themselves are refused at Configure.
	if err := (&holder{}).configure(Settings{StorageRoot: root, RegistryConfig: "/x"}); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("configure with both storage settings = %v", err)
	}
	if err := (&holder{}).configure(Settings{RegistryURL: "ftp://r"}); err == nil || !strings.Contains(err.Error(), `setting "registry_url"`) {
		t.Errorf("configure with a bad registry_url = %v", err)
	}
}
