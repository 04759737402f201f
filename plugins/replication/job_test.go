package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/sdk/sdktest"
)

// validParams are parameters that need no network to check.
func validParams() map[string]any {
	return map[string]any{
		"src_resource": resourceJSON("docker-registry", "https://src.example.com", "library/a", [][]string{{"v1", "latest"}}),
		"dst_resource": resourceJSON("harbor", "https://dst.example.com", "mirror/a", [][]string{{"v1", "latest"}}),
	}
}

func resourceJSON(typ, url, repo string, tags [][]string) string {
	raw, _ := json.Marshal(resourceObject(typ, url, repo, tags))
	return string(raw)
}

func resourceObject(typ, url, repo string, tags [][]string) map[string]any {
	md := map[string]any{"artifacts": artifactsOf(tags)}
	if repo != "" {
		md["repository"] = map[string]any{"name": repo}
	}
	return map[string]any{
		"type":     "image",
		"registry": map[string]any{"type": typ, "url": url, "credential": map[string]any{"type": "basic", "access_key": "u", "access_secret": "p"}},
		"metadata": md,
	}
}

// with returns validParams changed by f.
func with(f func(p map[string]any)) map[string]any {
	p := validParams()
	f(p)
	return p
}

// srcObject returns validParams with the source as an object changed by f.
func srcObject(f func(r map[string]any)) map[string]any {
	return with(func(p map[string]any) {
		r := resourceObject("docker-registry", "https://src.example.com", "library/a", [][]string{{"v1", "latest"}})
		f(r)
		p["src_resource"] = r
	})
}

func registryOf(r map[string]any) map[string]any { return r["registry"].(map[string]any) }

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		params  map[string]any
		wantErr string // substring; "" means valid
	}{
		{"HarborsJSONStrings", validParams(), ""},
		{"Objects", srcObject(func(map[string]any) {}), ""},
		{"HarborsOtherFields", srcObject(func(r map[string]any) {
			r["extended_info"] = map[string]any{"x": 1}
			registryOf(r)["id"], registryOf(r)["status"], registryOf(r)["creation_time"] = 3, "healthy", "2024-01-01T00:00:00Z"
		}), ""},
		{"Digest", with(func(p map[string]any) {
			p["src_resource"] = `{"registry":{"type":"docker-registry","url":"http://src.example.com:5000"},"metadata":{"repository":{"name":"a"},"artifacts":[{"digest":"sha256:` + strings.Repeat("ab", 32) + `"}]}}`
			p["dst_resource"] = `{"registry":{"type":"docker-registry","url":"http://dst.example.com:5000"},"metadata":{"repository":{"name":"b"}}}`
		}), ""},
		{"EveryTagOfARepository", with(func(p map[string]any) {
			p["src_resource"] = resourceJSON("docker-registry", "https://src.example.com", "library/a", nil)
			p["dst_resource"] = resourceJSON("docker-registry", "https://dst.example.com", "", nil)
			p["filters"] = []any{map[string]any{"type": "tag", "value": "v{1,2}.*"}}
		}), ""},
		{"EveryRepository", with(func(p map[string]any) {
			p["src_resource"] = resourceJSON("docker-registry", "https://src.example.com", "", nil)
			p["dst_resource"] = resourceJSON("docker-registry", "https://dst.example.com", "mirror", nil)
			p["filters"] = []any{map[string]any{"type": "name", "value": "library/**"}, map[string]any{"type": "tag", "value": "*-rc*", "decoration": "excludes"}}
		}), ""},
		{"AllOptions", with(func(p map[string]any) { p["speed"], p["copy_by_chunk"], p["chunk_size"] = 8000, true, 1<<20 }), ""},
		{"HarborsNoLimit", with(func(p map[string]any) { p["speed"] = -1 }), ""},

		{"NoSource", with(func(p map[string]any) { delete(p, "src_resource") }), `parameter "src_resource" is required`},
		{"NoDestination", with(func(p map[string]any) { delete(p, "dst_resource") }), `parameter "dst_resource" is required`},
		{"SourceNotJSON", with(func(p map[string]any) { p["src_resource"] = "{registry" }), `parameter "src_resource" must be a resource: an object with registry and metadata, or its JSON as a string`},
		{"SourceNumber", with(func(p map[string]any) { p["src_resource"] = 7 }), `parameter "src_resource" must be a resource: an object with registry and metadata, or its JSON as a string, got a number`},
		{"SourceWrongShape", srcObject(func(r map[string]any) { r["metadata"] = "x" }), `parameter "src_resource" must be a resource`},
		{"NoRegistry", srcObject(func(r map[string]any) { delete(r, "registry") }), `parameter "src_resource" must have a registry (type, url, credential, insecure), got none`},
		{"UnknownRegistryType", srcObject(func(r map[string]any) { registryOf(r)["type"] = "quay" }), `parameter "src_resource.registry.type" must be "docker-registry" or "harbor", got "quay"`},
		{"NoRegistryType", srcObject(func(r map[string]any) { delete(registryOf(r), "type") }), `parameter "src_resource.registry.type" must be "docker-registry" or "harbor", got none`},
		{"FTPURL", srcObject(func(r map[string]any) { registryOf(r)["url"] = "ftp://src.example.com" }), `parameter "src_resource.registry.url" must be an http or https URL, got one with scheme "ftp"`},
		{"URLWithoutScheme", with(func(p map[string]any) {
			p["dst_resource"] = resourceJSON("harbor", "dst.example.com", "a", nil)
		}), `parameter "dst_resource.registry.url" must be an http or https URL, got one with no scheme`},
		{"URLWithUser", srcObject(func(r map[string]any) { registryOf(r)["url"] = "https://u:secret@src.example.com" }), `parameter "src_resource.registry.url" must not hold a user or password`},
		{"URLWithPath", srcObject(func(r map[string]any) { registryOf(r)["url"] = "https://src.example.com/v2/x" }), `must be the registry's base URL`},
		{"URLBadPort", srcObject(func(r map[string]any) { registryOf(r)["url"] = "https://src.example.com:99999" }), `port "99999", which must be from 1 to 65535`},
		{"URLRefused", srcObject(func(r map[string]any) { registryOf(r)["url"] = "http://169.254.169.254" }), `parameter "src_resource.registry.url" (169.254.169.254) is refused: 169.254.169.254 is in 169.254.0.0/16`},
		{"UnknownCredentialType", srcObject(func(r map[string]any) { registryOf(r)["credential"] = map[string]any{"type": "kerberos"} }), `parameter "src_resource.registry.credential.type" must be "basic", "oauth" or "secret", got "kerberos"`},
		{"SecretWithoutSecret", srcObject(func(r map[string]any) { registryOf(r)["credential"] = map[string]any{"type": "secret"} }), `parameter "src_resource.registry.credential.access_secret" must be Harbor's secret`},
		{"BasicWithoutUser", srcObject(func(r map[string]any) {
			registryOf(r)["credential"] = map[string]any{"type": "basic", "access_secret": "x"}
		}), `parameter "src_resource.registry.credential.access_key" must be the user name`},
		{"BadRepository", srcObject(func(r map[string]any) {
			r["metadata"].(map[string]any)["repository"] = map[string]any{"name": "Library/A"}
		}), `parameter "src_resource.metadata.repository.name" must be a repository name`},
		{"BadDestinationRepository", with(func(p map[string]any) {
			p["dst_resource"] = resourceJSON("harbor", "https://dst.example.com", "mirror//a", [][]string{{"v1", "latest"}})
		}), `parameter "dst_resource.metadata.repository.name" must be a repository name`},
		{"ArtifactsWithoutRepository", with(func(p map[string]any) {
			p["src_resource"] = resourceJSON("docker-registry", "https://src.example.com", "", [][]string{{"v1"}})
		}), `parameter "src_resource.metadata.repository.name" must name the repository of the artifacts it lists`},
		{"BadTag", with(func(p map[string]any) {
			p["src_resource"] = resourceJSON("docker-registry", "https://src.example.com", "a", [][]string{{"v1", "-bad"}})
		}), `parameter "src_resource.metadata.artifacts[0].tags[1]" must be a tag`},
		{"BadDestinationTag", with(func(p map[string]any) {
			p["dst_resource"] = resourceJSON("harbor", "https://dst.example.com", "a", [][]string{{"v1", "x/y"}})
		}), `parameter "dst_resource.metadata.artifacts[0].tags[1]" must be a tag`},
		{"BadDigest", with(func(p map[string]any) {
			p["src_resource"] = `{"registry":{"type":"docker-registry","url":"https://src.example.com"},"metadata":{"repository":{"name":"a"},"artifacts":[{"digest":"sha256:abc"}]}}`
		}), `parameter "src_resource.metadata.artifacts[0].digest" must be a digest`},
		{"EmptyArtifact", with(func(p map[string]any) {
			p["src_resource"] = `{"registry":{"type":"docker-registry","url":"https://src.example.com"},"metadata":{"repository":{"name":"a"},"artifacts":[{}]}}`
		}), `parameter "src_resource.metadata.artifacts[0]" must have tags or a digest`},
		{"TagCountMismatch", with(func(p map[string]any) {
			p["dst_resource"] = resourceJSON("harbor", "https://dst.example.com", "a", [][]string{{"v1"}})
		}), `parameter "dst_resource.metadata.artifacts[0].tags" must have as many tags as the source's artifact (2), got 1`},
		{"ArtifactCountMismatch", with(func(p map[string]any) {
			p["dst_resource"] = resourceJSON("harbor", "https://dst.example.com", "a", [][]string{{"v1", "latest"}, {"x"}})
		}), `parameter "dst_resource.metadata.artifacts" must list as many artifacts as "src_resource.metadata.artifacts" (1), got 2`},
		{"Deletion", srcObject(func(r map[string]any) { r["deleted"] = true }), `parameter "src_resource" asks for a deletion`},
		{"Chart", srcObject(func(r map[string]any) { r["type"] = "chart" }), `parameter "src_resource" has type "chart"`},
		{"SpeedNotInteger", with(func(p map[string]any) { p["speed"] = 1.5 }), `parameter "speed"`},
		{"SpeedString", with(func(p map[string]any) { p["speed"] = "fast" }), `parameter "speed"`},
		{"SpeedNegative", with(func(p map[string]any) { p["speed"] = -5 }), `parameter "speed"`},
		{"CopyByChunkNotBool", with(func(p map[string]any) { p["copy_by_chunk"] = "yes" }), `parameter "copy_by_chunk"`},
		{"ChunkSizeTooSmall", with(func(p map[string]any) { p["chunk_size"] = 100 }), `parameter "chunk_size"`},
		{"ChunkSizeTooLarge", with(func(p map[string]any) { p["chunk_size"] = 1 << 30 }), `parameter "chunk_size"`},
		{"ChunkSizeZero", with(func(p map[string]any) { p["chunk_size"] = 0 }), `parameter "chunk_size"`},
		{"FilterType", with(func(p map[string]any) { p["filters"] = []any{map[string]any{"type": "label", "value": "x"}} }), `parameter "filters.0.type" must be one of "name", "repository", "tag", got "label"`},
		{"FilterGlob", with(func(p map[string]any) { p["filters"] = []any{map[string]any{"type": "tag", "value": "v{1"}} }), `parameter "filters.0.value" must be a glob pattern`},
		{"FilterDecoration", with(func(p map[string]any) {
			p["filters"] = []any{map[string]any{"type": "tag", "value": "v1", "decoration": "maybe"}}
		}), `parameter "filters.0.decoration" must be one of "matches", "excludes", got "maybe"`},
		{"UnknownParameter", with(func(p map[string]any) { p["policy_id"] = 3 }), `unknown parameter "policy_id"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job, config := newPlugin()
			err := sdktest.Validate(t, job, tc.params, sdktest.WithPlugin(config))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// Loopback registries are refused unless the operator allows them.
func TestValidateRefusesLoopbackUnlessAllowed(t *testing.T) {
	t.Parallel()
	p := with(func(p map[string]any) {
		p["src_resource"] = resourceJSON("docker-registry", "http://127.0.0.1:5000", "a", [][]string{{"v1", "latest"}})
	})
	job, config := newPlugin()
	err := sdktest.Validate(t, job, p, sdktest.WithPlugin(config))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1 is in 127.0.0.0/8 (loopback)") {
		t.Fatalf("Validate without allowed networks = %v", err)
	}
	job, config = newPlugin()
	if err := sdktest.Validate(t, job, p, sdktest.WithPlugin(config), sdktest.WithConfig(allowLoopback)); err != nil {
		t.Fatalf("Validate with 127.0.0.0/8 allowed = %v", err)
	}
}

func TestCopiesImagesAndIndexThenSkipsEverything(t *testing.T) {
	t.Parallel()
	src, dst := newTestRegistry(t, true), newTestRegistry(t, true)
	d1 := src.push(t, "library/a:v1", 2, 4096)
	d2 := src.push(t, "library/a:v2", 3, 4096)
	di := src.pushIndex(t, "library/a:multi", 2)
	params := map[string]any{
		"src_resource": src.resourceOf(testPassword, "library/a", []string{"v1"}, []string{"v2"}, []string{"multi"}),
		"dst_resource": dst.resourceOf(testPassword, "mirror/a", []string{"v1"}, []string{"v2"}, []string{"multi"}),
	}
	res := runJob(t, params)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v\n%s", res.Kind, res.Err, logText(res))
	}
	for tag, want := range map[string]string{"v1": d1, "v2": d2, "multi": di} {
		if got := dst.digest(t, "mirror/a:"+tag); got != want {
			t.Fatalf("mirror/a:%s is %q, want %s", tag, got, want)
		}
		dst.validate(t, "mirror/a:"+tag)
	}
	// Every blob was checked in: 3 and 4 of the images, the index's two
	// images' 3 each.
	cis := checkins(t, res)
	if len(cis) != 3+4+6 {
		t.Fatalf("%d check-ins, want 13: %q", len(cis), res.CheckIns)
	}
	last := cis[len(cis)-1]
	if last.Artifact != "library/a:multi" || last.Index != 6 || last.Total != 6 || last.Skipped || last.Bytes == 0 || !strings.HasPrefix(last.Blob, "sha256:") {
		t.Fatalf("last check-in %+v", last)
	}
	if log := logText(res); !strings.Contains(log, "library/a:v1 to "+dst.host()+"/mirror/a:v1: copied image "+d1) {
		t.Fatalf("no log line of library/a:v1:\n%s", log)
	}
	var out summary
	if err := json.Unmarshal(res.Output, &out); err != nil || out.Copied != 3 || out.BlobsUploaded != 13 {
		t.Fatalf("output %s (%v)", res.Output, err)
	}

	// A rerun skips every tag and every blob and writes nothing.
	dst.reset()
	res = runJob(t, params)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("rerun = %s %v", res.Kind, res.Err)
	}
	cis = checkins(t, res)
	if len(cis) != 13 {
		t.Fatalf("rerun: %d check-ins, want 13", len(cis))
	}
	for _, ci := range cis {
		if !ci.Skipped || ci.Bytes != 0 {
			t.Fatalf("rerun check-in %+v, want skipped", ci)
		}
	}
	if w := dst.writes(); len(w) != 0 {
		t.Fatalf("the rerun wrote %q", w)
	}
	if log := logText(res); strings.Count(log, "skipped: the destination tag is") != 3 {
		t.Fatalf("rerun log:\n%s", log)
	}
}

func TestOverride(t *testing.T) {
	t.Parallel()
	src, dst := newTestRegistry(t, false), newTestRegistry(t, false)
	want := src.push(t, "a:v1", 1, 1024)
	other := dst.push(t, "a:v1", 1, 1024)
	params := map[string]any{"src_resource": src.resourceOf("", "a", []string{"v1"}), "dst_resource": dst.resourceOf("", "a", []string{"v1"})}
	res := runJob(t, params)
	if res.Kind != sdktest.Succeeded || dst.digest(t, "a:v1") != other {
		t.Fatalf("override false: %s %v; a:v1 is %s, want it kept at %s", res.Kind, res.Err, dst.digest(t, "a:v1"), other)
	}
	if !strings.Contains(logText(res), "override is false: kept") {
		t.Fatalf("log:\n%s", logText(res))
	}
	var dstRes map[string]any
	_ = json.Unmarshal([]byte(dst.resourceOf("", "a", []string{"v1"})), &dstRes)
	dstRes["override"] = true
	params["dst_resource"] = dstRes
	if res := runJob(t, params); res.Kind != sdktest.Succeeded || dst.digest(t, "a:v1") != want {
		t.Fatalf("override true: %s %v; a:v1 is %s, want %s", res.Kind, res.Err, dst.digest(t, "a:v1"), want)
	}
}

func TestCopyByChunk(t *testing.T) {
	t.Parallel()
	src, dst := newTestRegistry(t, false), newTestRegistry(t, false)
	want := src.push(t, "a:v1", 2, 10000)
	params := map[string]any{"src_resource": src.resourceOf("", "a", []string{"v1"}), "dst_resource": dst.resourceOf("", "a", []string{"v1"}),
		"copy_by_chunk": true, "chunk_size": 1024}
	if res := runJob(t, params); res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v\n%s", res.Kind, res.Err, logText(res))
	}
	if got := dst.digest(t, "a:v1"); got != want {
		t.Fatalf("a:v1 is %s, want %s", got, want)
	}
	dst.validate(t, "a:v1")
	// Two layers of about 10 kB in 1 KiB chunks.
	if n := len(dst.requests(http.MethodPatch, "/blobs/uploads/")); n < 2*9 {
		t.Fatalf("%d PATCH requests, want at least 18", n)
	}
}

// A failed blob upload is tried again; a chunk the registry lost is sent
// again.
func TestRetriesABlobAndAChunk(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		src, dst := newTestRegistry(t, false), newTestRegistry(t, false)
		want := src.push(t, "a:v1", 1, 4096)
		method := http.MethodPut
		if chunked {
			method = http.MethodPatch
		}
		failed := 0
		dst.setFault(func(r *http.Request) int {
			if r.Method == method && strings.Contains(r.URL.Path, "/blobs/uploads/") && failed < 1 {
				failed++
				return http.StatusServiceUnavailable
			}
			return 0
		})
		params := map[string]any{"src_resource": src.resourceOf("", "a", []string{"v1"}), "dst_resource": dst.resourceOf("", "a", []string{"v1"}),
			"copy_by_chunk": chunked, "chunk_size": 1024}
		res := runJob(t, params)
		if res.Kind != sdktest.Succeeded || dst.digest(t, "a:v1") != want {
			t.Fatalf("chunked %v: %s %v\n%s", chunked, res.Kind, res.Err, logText(res))
		}
		dst.validate(t, "a:v1")
		if log := logText(res); !strings.Contains(log, "attempt 1 of 3") {
			t.Fatalf("chunked %v: no retry in the log:\n%s", chunked, log)
		}
	}
}

// A tag that fails does not stop the others; the error names each.
func TestFailingTagsAreNamed(t *testing.T) {
	t.Parallel()
	src, dst := newTestRegistry(t, false), newTestRegistry(t, false)
	src.push(t, "a:v1", 1, 1024)
	want := src.push(t, "a:v3", 1, 1024)
	params := map[string]any{"src_resource": src.resourceOf("", "a", []string{"v1", "v2", "v3"}), "dst_resource": dst.resourceOf("", "a", []string{"v1", "bad", "v3"})}
	dst.setFault(func(r *http.Request) int {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/v1") {
			return http.StatusInternalServerError
		}
		return 0
	})
	res := runJob(t, params)
	if res.Kind != sdktest.Failed {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	msg := res.Err.Error()
	if !strings.Contains(msg, "2 of 3 artifacts failed") || !strings.Contains(msg, "a:v1: ") || !strings.Contains(msg, "500 Internal Server Error") ||
		!strings.Contains(msg, "a:v2: registry "+src.host()+": get the manifest of a:v2: the source has no such artifact") {
		t.Fatalf("error %q", msg)
	}
	if dst.digest(t, "a:v3") != want {
		t.Fatal("a:v3 was not copied")
	}

	// Only failures no retry can mend: the job fails for good.
	params = map[string]any{"src_resource": src.resourceOf("", "a", []string{"v8", "v9"}), "dst_resource": dst.resourceOf("", "a", []string{"v8", "v9"})}
	if res := runJob(t, params); res.Kind != sdktest.FailedPermanently || !strings.Contains(res.Err.Error(), "2 of 2 artifacts failed") {
		t.Fatalf("missing tags: %s %v", res.Kind, res.Err)
	}
}

// Every repository and tag of the source that passes the filters.
func TestFilters(t *testing.T) {
	t.Parallel()
	src, dst := newTestRegistry(t, false), newTestRegistry(t, false)
	keep := src.push(t, "library/a:v1", 1, 1024)
	src.push(t, "library/a:v1-rc1", 1, 1024)
	keep2 := src.push(t, "library/sub/b:v2", 1, 1024)
	src.push(t, "other/c:v1", 1, 1024)
	params := map[string]any{
		"src_resource": src.resourceOf("", "", nil...),
		"dst_resource": dst.resourceOf("", "mirror"),
		"filters": []any{
			map[string]any{"type": "name", "value": "library/**"},
			map[string]any{"type": "tag", "value": "*-rc*", "decoration": "excludes"},
		},
	}
	res := runJob(t, params)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v\n%s", res.Kind, res.Err, logText(res))
	}
	if dst.digest(t, "mirror/library/a:v1") != keep || dst.digest(t, "mirror/library/sub/b:v2") != keep2 {
		t.Fatal("the matching tags were not copied")
	}
	if dst.digest(t, "mirror/library/a:v1-rc1") != "" || dst.digest(t, "mirror/other/c:v1") != "" {
		t.Fatal("a filtered tag was copied")
	}
}

// A stop inside a long, rate-limited upload ends the run within a second,
// and the destination tag is never pushed.
func TestStopInsideAnUpload(t *testing.T) {
	t.Parallel()
	src, dst := newTestRegistry(t, false), newTestRegistry(t, false)
	src.push(t, "a:v1", 2, 200<<10)
	// 200 KiB layers at 80 kbit/s (10 kB/s): each takes about 20 s.
	params := map[string]any{"src_resource": src.resourceOf("", "a", []string{"v1"}), "dst_resource": dst.resourceOf("", "a", []string{"v1"}), "speed": 80}
	run := startJob(t, params)
	// The config blob is the first, and small; the second PUT is a
	// layer's, now streaming.
	waitUploads(t, dst, 2)
	start := time.Now()
	run.Stop()
	res := run.Wait()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the run took %s to stop", took)
	}
	if res.Kind == sdktest.Succeeded {
		t.Fatal("the run succeeded")
	}
	if dst.digest(t, "a:v1") != "" {
		t.Fatal("the destination tag exists")
	}
	if len(dst.requests(http.MethodPut, "/manifests/")) != 0 {
		t.Fatal("a manifest was pushed")
	}
}

// A wrong password fails the run at once (its blobs are not retried),
// saying so, and the password is in no error, log line or check-in; the
// job's runs are retried by its rules.
func TestWrongPasswordFailsAndIsNeverShown(t *testing.T) {
	t.Parallel()
	src, dst := newTestRegistry(t, true), newTestRegistry(t, true)
	src.push(t, "a:v1", 1, 1024)
	const wrong = "wr0ng-Passw0rd-xyz"
	params := map[string]any{"src_resource": src.resourceOf(testPassword, "a", []string{"v1"}), "dst_resource": dst.resourceOf(wrong, "a", []string{"v1"})}
	res := runJob(t, params)
	if res.Kind != sdktest.Failed || !strings.Contains(res.Err.Error(), "authentication failed") || !strings.Contains(res.Err.Error(), dst.host()) {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	all := res.Err.Error() + logText(res) + strings.Join(res.CheckIns, "\n") + string(res.Output)
	for _, secret := range []string{wrong, testPassword} {
		if strings.Contains(all, secret) {
			t.Fatalf("a password shows:\n%s", all)
		}
	}
}

// A Harbor registry answers with a Bearer challenge to its token
// service: the job gets a token with the credential and copies; neither
// the password nor the token shows.
func TestHarborTokenAuth(t *testing.T) {
	t.Parallel()
	src, dst := newTokenRegistry(t), newTokenRegistry(t)
	want := src.push(t, "library/a:v1", 2, 2048)
	var srcRes, dstRes map[string]any
	_ = json.Unmarshal([]byte(src.resourceOf(testPassword, "library/a", []string{"v1"})), &srcRes)
	_ = json.Unmarshal([]byte(dst.resourceOf(testPassword, "library/a", []string{"v1"})), &dstRes)
	srcRes["registry"].(map[string]any)["type"] = "harbor"
	dstRes["registry"].(map[string]any)["type"] = "harbor"
	res := runJob(t, map[string]any{"src_resource": srcRes, "dst_resource": dstRes})
	if res.Kind != sdktest.Succeeded || dst.digest(t, "library/a:v1") != want {
		t.Fatalf("run = %s %v\n%s", res.Kind, res.Err, logText(res))
	}
	dst.validate(t, "library/a:v1")
	shown := logText(res) + strings.Join(res.CheckIns, "\n")
	if strings.Contains(shown, testPassword) || strings.Contains(shown, src.token) || strings.Contains(shown, dst.token) {
		t.Fatalf("a secret shows:\n%s", shown)
	}

	// A wrong password is refused by the token service.
	dstRes["registry"].(map[string]any)["credential"].(map[string]any)["access_secret"] = "not-the-password-9"
	res = runJob(t, map[string]any{"src_resource": srcRes, "dst_resource": dstRes})
	if res.Kind != sdktest.Failed || !strings.Contains(res.Err.Error(), "authentication failed") || strings.Contains(res.Err.Error()+logText(res), "not-the-password-9") {
		t.Fatalf("wrong password: %s %v\n%s", res.Kind, res.Err, logText(res))
	}
}

// A digest given with tags pins what is copied; a digest alone is copied
// by digest. A cancel ends a run as a stop does.
func TestDigestsAndCancel(t *testing.T) {
	t.Parallel()
	src, dst := newTestRegistry(t, false), newTestRegistry(t, false)
	d1 := src.push(t, "a:old", 1, 1024)
	src.push(t, "a:v1", 1, 1024) // a:v1 moved on since d1
	d2 := src.push(t, "a:other", 1, 1024)
	raw := func(reg *testRegistry, arts string) string {
		return `{"registry":{"type":"docker-registry","url":"` + reg.srv.URL + `"},"metadata":{"repository":{"name":"a"},"artifacts":` + arts + `}}`
	}
	res := runJob(t, map[string]any{
		"src_resource": raw(src, `[{"digest":"`+d1+`","tags":["v1"]},{"digest":"`+d2+`"}]`),
		"dst_resource": raw(dst, `[{"tags":["pinned"]},{}]`),
	})
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v\n%s", res.Kind, res.Err, logText(res))
	}
	if dst.digest(t, "a:pinned") != d1 || dst.digest(t, "a@"+d2) != d2 {
		t.Fatalf("a:pinned is %s (want %s); a@%s is %q", dst.digest(t, "a:pinned"), d1, d2, dst.digest(t, "a@"+d2))
	}

	src.push(t, "a:big", 1, 200<<10)
	dst.reset()
	run := startJob(t, map[string]any{
		"src_resource": raw(src, `[{"tags":["big"]}]`),
		"dst_resource": raw(dst, `[{"tags":["big"]}]`),
		"speed":        80,
	})
	waitUploads(t, dst, 2)
	start := time.Now()
	run.Cancel()
	res = run.Wait()
	if took := time.Since(start); took > time.Second || res.Kind == sdktest.Succeeded || dst.digest(t, "a:big") != "" {
		t.Fatalf("cancel: %s %v after %s; a:big is %q", res.Kind, res.Err, took, dst.digest(t, "a:big"))
	}
}

// waitUploads waits until reg got n blob PUTs, at most 20 s.
func waitUploads(t *testing.T, reg *testRegistry, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(reg.requests(http.MethodPut, "/blobs/uploads/")) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d blob uploads within 20 s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGlobs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		match      bool
	}{
		{"library/*", "library/nginx", true},
		{"library/*", "library/a/b", false},
		{"library/**", "library/a/b", true},
		{"**", "a/b/c", true},
		{"v?.*", "v1.2", true},
		{"v?.*", "v10.2", false},
		{"{v1,v2}*", "v2-rc", true},
		{"{v1,v2}*", "v3", false},
		{"a.b", "aXb", false},
		{"1.*", "1.27", true},
	} {
		g, err := compileGlob(tc.pattern)
		if err != nil {
			t.Fatalf("compileGlob(%q) = %v", tc.pattern, err)
		}
		if got := g.re.MatchString(tc.s); got != tc.match {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.s, got, tc.match)
		}
	}
	for _, bad := range []string{"", "{a,b"} {
		if _, err := compileGlob(bad); err == nil {
			t.Errorf("compileGlob(%q) = nil error", bad)
		}
	}
}
