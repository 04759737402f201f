package registrytest

import (
	"errors"
	"io/fs"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/spawn"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

// Blobs returns the digests ("sha256:…") of the blobs in the registry's
// storage, sorted: layers, configs and manifests alike, referenced or not.
// It reads the files, as a garbage collector does.
func (r *Registry) Blobs(t testing.TB) []string {
	t.Helper()
	root := filepath.Join(r.storageRoot, "docker", "registry", "v2", "blobs", "sha256")
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// .../blobs/sha256/<2 hex>/<64 hex>/data
		if !d.IsDir() && d.Name() == "data" {
			out = append(out, "sha256:"+filepath.Base(filepath.Dir(p)))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("registrytest: list blobs: %v", err)
	}
	sort.Strings(out)
	return out
}

// GarbageCollect runs the registry's own collector on its storage
// (`docker-registry garbage-collect [--delete-untagged] ConfigPath`) and
// returns its output; it fails the test if the collector fails. Nothing
// should push meanwhile (SetReadOnly, or Stop, if the test cannot promise
// that). The running registry has no cache and sees the result at once.
func (r *Registry) GarbageCollect(t testing.TB, deleteUntagged bool) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	args := []string{"garbage-collect"}
	if deleteUntagged {
		args = append(args, "--delete-untagged")
	}
	var out procs.Buffer
	cmd := exec.Command(bin, append(args, r.configPath)...)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = &out, &out
	p, err := spawn.Start(cmd)
	if err != nil {
		t.Fatalf("registrytest: start %s: %v", bin, err)
	}
	timer := time.NewTimer(opTimeout)
	defer timer.Stop()
	select {
	case <-p.Done():
	case <-timer.C:
		p.Kill()
		t.Fatalf("registrytest: %s %v did not end within %s\n%s", bin, args, opTimeout, out.String())
	}
	if p.Err() != nil {
		t.Fatalf("registrytest: %s %v: %v\n%s", bin, args, p.Err(), out.String())
	}
	return out.String()
}
