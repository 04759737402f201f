package daemon_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/gcref"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/registrytest"
)

// The tests of this file run the GARBAGE_COLLECTION plugin (plugins/gc)
// through a real host, against a real docker-registry seeded by
// gcref.Seed (a:v1 overwritten, a:v2 sharing its layers, a:multi an
// index, b:x deleted through the API), and check what it did against
// distribution v3's own collector (gcref).

// gcSettings is the plugin's section: the registry's login for the
// registry_url checks, and extra settings.
func gcSettings(reg *registrytest.Registry, extra map[string]any) func(*config.Config) {
	return func(c *config.Config) {
		section := map[string]any{"registries": []any{map[string]any{"url": reg.URL(), "username": reg.Username(), "password": reg.Password()}}}
		maps.Copy(section, extra)
		c.PluginConfig = map[string]map[string]any{"gc": section}
	}
}

// gcParams are the parameters of a collection of reg's storage, with
// time_window 0 (everything is old enough), and extra.
func gcParams(reg *registrytest.Registry, extra map[string]any) map[string]any {
	p := map[string]any{"storage_root": reg.StorageRoot(), "time_window": 0}
	maps.Copy(p, extra)
	return p
}

// gcResult is Harbor's result of a GC job.
type gcResult struct {
	FreedSpace      int64 `json:"freed_space"`
	PurgedBlobs     int   `json:"purged_blobs"`
	PurgedManifests int   `json:"purged_manifests"`
}

// gcResultOf decodes a job's check-in as Harbor's result, strictly.
func gcResultOf(t *testing.T, st *job.Stats) gcResult {
	t.Helper()
	var r gcResult
	dec := json.NewDecoder(strings.NewReader(st.CheckIn))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the last check-in %q is not Harbor's GC result: %v", st.CheckIn, err)
	}
	return r
}

// gcLine is a line of the job's log that names a deletion (verb
// "deleted") or, on a dry run, an eligible item.
var gcLine = regexp.MustCompile(`(?m)(?:(deleted) (blob|manifest|layer link)|(blob|manifest|layer link) (eligible for deletion)) (?:repository=(\S+) )?digest=(sha256:[0-9a-f]{64})`)

// gcLogged reads what the job's log says it deleted (dryRun: what it
// found eligible), in gcref's forms.
func gcLogged(t *testing.T, log string, dryRun bool) gcref.Result {
	t.Helper()
	var r gcref.Result
	for _, m := range gcLine.FindAllStringSubmatch(log, -1) {
		kind, eligible := m[2], m[4] != ""
		if kind == "" {
			kind = m[3]
		}
		if eligible != dryRun {
			t.Fatalf("a dry run %v logged %q", dryRun, m[0])
		}
		switch kind {
		case "blob":
			r.Blobs = append(r.Blobs, m[6])
		case "manifest":
			r.Manifests = append(r.Manifests, m[5]+"@"+m[6])
		case "layer link":
			r.LayerLinks = append(r.LayerLinks, m[5]+"@"+m[6])
		}
	}
	sort.Strings(r.Blobs)
	sort.Strings(r.Manifests)
	sort.Strings(r.LayerLinks)
	return r
}

// gcSame fails the test unless got and want name the same items.
func gcSame(t *testing.T, what string, got, want gcref.Result) {
	t.Helper()
	if !slices.Equal(got.Blobs, want.Blobs) || !slices.Equal(got.Manifests, want.Manifests) || !slices.Equal(got.LayerLinks, want.LayerLinks) {
		t.Fatalf("%s:\n got  %+v\n want %+v (the reference)", what, got, want)
	}
}

// gcValidateAll validates every tag of the scenario.
func gcValidateAll(t *testing.T, reg *registrytest.Registry, s gcref.Scenario) {
	t.Helper()
	for _, tag := range s.Tags {
		reg.Validate(t, tag)
	}
}

// A dry run finds eligible exactly what distribution v3's collector does
// with --dry-run --delete-untagged, says what a run would free, and leaves
// the storage byte for byte as it was.
func TestGCDryRunMatchesTheReference(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	s := gcref.Seed(t, reg)
	h := hosttest.NewCluster(t, "gc").Start(t, gcSettings(reg, nil))
	want := gcref.Eligible(t, reg.StorageRoot(), true)
	if len(want.Manifests) == 0 || len(want.Blobs) == 0 || len(want.LayerLinks) == 0 {
		t.Fatalf("the reference finds too little to compare: %+v", want)
	}
	before := gcref.Snapshot(t, reg.StorageRoot())

	st := h.Submit(t, "GARBAGE_COLLECTION", gcParams(reg, map[string]any{"dry_run": true}), nil)
	st = h.WaitStatus(t, st.ID, job.Success, wait)
	log := h.LogText(t, st.ID)
	gcSame(t, "the dry run's eligible items", gcLogged(t, log, true), want)
	if after := gcref.Snapshot(t, reg.StorageRoot()); !maps.Equal(before, after) {
		t.Fatal("the dry run changed the storage")
	}
	// What a run would free: the data of the eligible blobs.
	var freeable int64
	for _, d := range want.Blobs {
		freeable += gcref.BlobSize(t, reg.StorageRoot(), d)
	}
	res := gcResultOf(t, st)
	if res != (gcResult{FreedSpace: freeable, PurgedBlobs: len(want.Blobs), PurgedManifests: len(want.Manifests)}) {
		t.Fatalf("dry run result %+v; the reference's eligible blobs hold %d bytes, %d blobs, %d manifests", res, freeable, len(want.Blobs), len(want.Manifests))
	}
	if !strings.Contains(log, "garbage collection result: "+st.CheckIn) || !strings.Contains(log, "dry run: nothing was deleted") {
		t.Fatalf("the log lacks the result or the dry run's note:\n%s", log)
	}
	for _, keep := range append(append([]string{s.Index}, s.Children...), s.SharedLayers...) {
		if slices.Contains(want.Blobs, keep) {
			t.Fatalf("the reference deems %s eligible", keep)
		}
	}
}

// A real run with 3 workers, given the registry's config file and URL,
// deletes what the reference would: freed_space is the drop in blob data
// on disk, the shared layers and the index's children survive, every tag
// validates, and the reference then finds nothing left to collect.
func TestGCRunFreesWhatTheReferenceWould(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	s := gcref.Seed(t, reg)
	h := hosttest.NewCluster(t, "gc").Start(t, gcSettings(reg, nil))
	want := gcref.Eligible(t, reg.StorageRoot(), true)
	before := gcref.ReadState(t, reg.StorageRoot())
	sub := h.Subscribe(t)

	st := h.Submit(t, "GARBAGE_COLLECTION", map[string]any{"registry_config": reg.ConfigPath(), "registry_url": reg.URL(),
		"time_window": 0, "workers": 3, "delete_untagged": true}, nil)
	st = h.WaitStatus(t, st.ID, job.Success, wait)
	// The check-ins: progress of each phase, then the result, last.
	var phases []string
	hosttest.WaitEvent(t, sub, wait, "the result's check-in", func(e job.Event) bool {
		if e.JobID != st.ID || e.Reason != job.CheckedIn {
			return false
		}
		if phase, _, _ := gcProgress(e.CheckIn); phase != "" && (len(phases) == 0 || phases[len(phases)-1] != phase) {
			phases = append(phases, phase)
		}
		return e.CheckIn == st.CheckIn
	})
	if got := strings.Join(phases, ","); got != "scan,mark,sweep,verify" {
		t.Fatalf("the phases checked in before the result: %s", got)
	}
	after := gcref.ReadState(t, reg.StorageRoot())
	log := h.LogText(t, st.ID)
	gcSame(t, "what the run deleted", gcLogged(t, log, false), want)

	res := gcResultOf(t, st)
	if res.FreedSpace != before.BlobBytes-after.BlobBytes || res.FreedSpace <= 0 {
		t.Fatalf("freed_space %d, but the blob data shrank by %d bytes", res.FreedSpace, before.BlobBytes-after.BlobBytes)
	}
	if res.PurgedBlobs != len(want.Blobs) || res.PurgedManifests != len(want.Manifests) {
		t.Fatalf("result %+v, the reference deletes %d blobs and %d manifests", res, len(want.Blobs), len(want.Manifests))
	}
	var out gcResult
	if err := json.Unmarshal(st.Output, &out); err != nil || out != res {
		t.Fatalf("output %s, want the result %+v", st.Output, res)
	}
	for _, keep := range append(append(append([]string{s.Index, s.Current, s.V2}, s.Children...), s.ChildBlobs...), s.SharedLayers...) {
		if !slices.Contains(after.Blobs, keep) {
			t.Fatalf("blob %s, which a tag reaches, was deleted", keep)
		}
	}
	for _, c := range s.Children {
		if !reg.Exists(t, "a@"+c) {
			t.Fatalf("the index child %s is no longer served", c)
		}
	}
	gcValidateAll(t, reg, s)
	if !strings.Contains(log, "every tag still resolves and validates") {
		t.Fatalf("the job did not check the tags through registry_url:\n%s", log)
	}
	if again := gcref.Eligible(t, reg.StorageRoot(), true); !again.Empty() {
		t.Fatalf("after the run the reference still finds %+v", again)
	}
}

// With delete_untagged false, a run deletes what the reference without
// --delete-untagged does: the overwritten image stays, b:x's blobs go.
func TestGCKeepUntaggedMatchesTheReference(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	s := gcref.Seed(t, reg)
	h := hosttest.NewCluster(t, "gc").Start(t, gcSettings(reg, nil))
	want := gcref.Eligible(t, reg.StorageRoot(), false)
	if len(want.Blobs) == 0 || len(want.Manifests) != 0 {
		t.Fatalf("the reference without --delete-untagged: %+v", want)
	}

	st := h.Submit(t, "GARBAGE_COLLECTION", gcParams(reg, map[string]any{"delete_untagged": false}), nil)
	st = h.WaitStatus(t, st.ID, job.Success, wait)
	gcSame(t, "what the run deleted", gcLogged(t, h.LogText(t, st.ID), false), want)
	if !reg.Exists(t, "a@"+s.Old) {
		t.Fatal("the untagged image was deleted with delete_untagged false")
	}
	gcValidateAll(t, reg, s)
	reg.Validate(t, "a@"+s.Old)
}

// With the default-sized time window of 2 hours, a freshly pushed
// registry loses nothing, garbage included.
func TestGCTimeWindowKeepsAFreshRegistry(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	gcref.Seed(t, reg)
	h := hosttest.NewCluster(t, "gc").Start(t, gcSettings(reg, nil))
	before := gcref.Snapshot(t, reg.StorageRoot())
	st := h.Submit(t, "GARBAGE_COLLECTION", gcParams(reg, map[string]any{"time_window": 2}), nil)
	st = h.WaitStatus(t, st.ID, job.Success, wait)
	if res := gcResultOf(t, st); res != (gcResult{}) {
		t.Fatalf("result %+v, want nothing freed", res)
	}
	if after := gcref.Snapshot(t, reg.StorageRoot()); !maps.Equal(before, after) {
		t.Fatal("the run changed the storage of a fresh registry")
	}
}

// gcJunk pushes an image of n layers to junk:1 and deletes it: n+1 blobs
// and n+1 layer links of garbage.
func gcJunk(t *testing.T, reg *registrytest.Registry, n int) {
	t.Helper()
	reg.PushRandom(t, "junk:1", n)
	reg.Delete(t, "junk:1")
}

// gcProgress decodes a progress check-in ({"phase","done","total"}).
func gcProgress(checkIn string) (phase string, done, total int) {
	var p struct {
		Phase string `json:"phase"`
		Done  int    `json:"done"`
		Total int    `json:"total"`
	}
	if json.Unmarshal([]byte(checkIn), &p) != nil {
		return "", 0, 0
	}
	return p.Phase, p.Done, p.Total
}

// A stop during the sweep (deletes slowed down by the plugin's
// deletes_per_second) ends the job Stopped with part of the garbage
// deleted and part left, and every tag still validates; the reference
// can still collect the rest.
func TestGCStopMidSweep(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	s := gcref.Seed(t, reg)
	gcJunk(t, reg, 60)
	h := hosttest.NewCluster(t, "gc").Start(t, gcSettings(reg, map[string]any{"deletes_per_second": 30}))
	eligible := gcref.Eligible(t, reg.StorageRoot(), true)
	total := len(eligible.Blobs) + len(eligible.Manifests) + len(eligible.LayerLinks)
	before := gcref.ReadState(t, reg.StorageRoot())

	st := h.Submit(t, "GARBAGE_COLLECTION", gcParams(reg, map[string]any{"workers": 2}), nil)
	h.Wait(t, st.ID, wait, "a check-in of the sweep under way", func(s *job.Stats) bool {
		phase, done, _ := gcProgress(s.CheckIn)
		return phase == "sweep" && done > 0
	})
	if r := h.Action(t, st.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	h.WaitStatus(t, st.ID, job.Stopped, wait)

	after := gcref.ReadState(t, reg.StorageRoot())
	deleted := len(before.Blobs) - len(after.Blobs) + len(before.Manifests) - len(after.Manifests) + len(before.LayerLinks) - len(after.LayerLinks)
	if deleted <= 0 || deleted >= total {
		t.Fatalf("the stopped sweep deleted %d of %d eligible items: not a stop in the middle", deleted, total)
	}
	gcValidateAll(t, reg, s)
	if log := h.LogText(t, st.ID); !strings.Contains(log, "the sweep ended early") {
		t.Fatalf("the log does not say the sweep ended early:\n%s", log)
	}
	if rest := gcref.Eligible(t, reg.StorageRoot(), true); rest.Empty() {
		t.Fatal("nothing is left for the reference: the sweep was not stopped")
	}
}

// Two GC jobs submitted together to two hosts on one Redis run one after
// the other: the second waits Pending while the first runs.
func TestGCRunsOneAtATimeAcrossHosts(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	s := gcref.Seed(t, reg)
	gcJunk(t, reg, 20)
	c := hosttest.NewCluster(t, "gc")
	settings := gcSettings(reg, map[string]any{"deletes_per_second": 25})
	h1, h2 := c.Start(t, settings), c.Start(t, settings)
	a := h1.Submit(t, "GARBAGE_COLLECTION", gcParams(reg, nil), nil)
	b := h2.Submit(t, "GARBAGE_COLLECTION", gcParams(reg, nil), nil)

	waited := false
	deadline := time.Now().Add(wait)
	for {
		sa, sb := h1.Get(t, a.ID), h1.Get(t, b.ID)
		if sa.Status == job.Running && sb.Status == job.Running {
			t.Fatalf("both GC jobs run at once: %s and %s", a.ID, b.ID)
		}
		if (sa.Status == job.Running && sb.Status == job.Pending) || (sb.Status == job.Running && sa.Status == job.Pending) {
			waited = true
		}
		if sa.Status == job.Success && sb.Status == job.Success {
			break
		}
		if sa.Status.Final() && sb.Status.Final() {
			t.Fatalf("the GC jobs ended %s and %s", sa.Status, sb.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the GC jobs did not both succeed within %s: %s %s", wait, sa.Status, sb.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !waited {
		t.Fatal("never saw one GC job wait while the other ran")
	}
	gcValidateAll(t, reg, s)
}

// A submission the job cannot run is a 400 that names the parameter.
func TestGCValidateThroughTheAPI(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.WithoutAuth())
	reg.PushRandom(t, "a:v1", 1)
	h := hosttest.NewCluster(t, "gc").Start(t, nil)
	notRegistry := t.TempDir()
	root := reg.StorageRoot()
	tests := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"DryRunNotBool", map[string]any{"storage_root": root, "dry_run": "yes"}, `parameter "dry_run" must be true or false`},
		{"DeleteUntaggedNotBool", map[string]any{"storage_root": root, "delete_untagged": "false"}, `parameter "delete_untagged" must be true or false`},
		{"WorkersZero", map[string]any{"storage_root": root, "workers": 0}, `parameter "workers" must be a whole number from 1 to 10`},
		{"WorkersEleven", map[string]any{"storage_root": root, "workers": 11}, `parameter "workers" must be a whole number from 1 to 10`},
		{"WindowNegative", map[string]any{"storage_root": root, "time_window": -2}, `parameter "time_window" must be a number of at least 0`},
		{"WindowNotNumber", map[string]any{"storage_root": root, "time_window": "2h"}, `parameter "time_window" must be a number`},
		{"Neither", map[string]any{"time_window": 0}, `one of parameters "storage_root" and "registry_config" is required`},
		{"Both", map[string]any{"storage_root": root, "registry_config": reg.ConfigPath()}, `parameters "storage_root" and "registry_config" exclude each other`},
		{"NotARegistry", map[string]any{"storage_root": notRegistry}, `parameter "storage_root" (` + notRegistry + `) does not look like a registry's storage`},
		{"RegistryURL", map[string]any{"storage_root": root, "registry_url": "registry:5000"}, `parameter "registry_url" must be an http or https URL`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("GARBAGE_COLLECTION", tc.params, nil))
			if e := errorOf(t, r, http.StatusBadRequest); !strings.Contains(e.Details, tc.want) {
				t.Fatalf("submit %v: %+v, want %q", tc.params, e, tc.want)
			}
		})
	}
	// And a valid one is accepted and runs.
	st := h.Submit(t, "GARBAGE_COLLECTION", map[string]any{"storage_root": root, "dry_run": true}, nil)
	h.WaitStatus(t, st.ID, job.Success, wait)
}
