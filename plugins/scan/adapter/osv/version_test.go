package osv

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// debVersions are versions whose every pair is ordered by dpkg itself
// (each starts with a digit, as Debian policy wants; the library refuses
// others, which Match reports):
// epochs, tildes (before anything, even the end), letters before
// non-letters, digits compared as numbers, revisions, +b binNMUs.
var debVersions = []string{
	"0", "0.1", "1", "1.0", "1.0-1", "1.0-1.1", "1.0-2", "1.0-10", "1.0~rc1", "1.0~rc1-1", "1.0~~a", "1.0~", "1.0a", "1.0+b1",
	"1.0-1+b1", "1.0-1~bpo1", "1.0.1", "1.00", "1.01", "1.1", "1.10", "1.2", "1:0.1", "1:1.0-1", "2:0", "1.2.3-4ubuntu1",
	"1.2.3-4ubuntu1.1", "1.2.3-4", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", "3.0.13-1", "1:1.2.13.dfsg-1", "1.2.13.dfsg-1",
	"12.4+deb12u5", "12.4", "2024a-0+deb12u1", "2024a-0+deb12u1~x", "1.0-a", "1.0-a1", "1.0-1a", "1.0+dfsg", "1.0.dfsg",
	"5.2.15-2", "5.2.15-2+b2", "5.2.15-2~b1",
}

// dpkgCompare asks dpkg how a and b compare.
func dpkgCompare(ctx context.Context, a, b string) (int, error) {
	for _, c := range []struct {
		op  string
		res int
	}{{"lt", -1}, {"gt", 1}} {
		err := exec.CommandContext(ctx, "dpkg", "--compare-versions", a, c.op, b).Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return c.res, nil
		case errors.As(err, &exit) && exit.ExitCode() == 1:
		default:
			return 0, fmt.Errorf("dpkg --compare-versions %q %s %q: %v", a, c.op, b, err)
		}
	}
	return 0, nil
}

func TestCompareDebAgreesWithDpkg(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatal("dpkg is not on PATH: this test checks Debian's version order against dpkg --compare-versions (apt-get install -y dpkg)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type pair struct{ a, b string }
	pairs := make(chan pair)
	var mu sync.Mutex
	var wg sync.WaitGroup
	compared := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range pairs {
				want, err := dpkgCompare(ctx, p.a, p.b)
				if err != nil {
					t.Error(err)
					continue
				}
				got, err := CompareDeb(p.a, p.b)
				mu.Lock()
				compared++
				mu.Unlock()
				if err != nil || got != want {
					t.Errorf("CompareDeb(%q, %q) = %d, %v; dpkg says %d", p.a, p.b, got, err, want)
				}
			}
		}()
	}
	for i, a := range debVersions {
		for _, b := range debVersions[i:] {
			pairs <- pair{a, b}
		}
	}
	close(pairs)
	wg.Wait()
	if n := len(debVersions) * (len(debVersions) + 1) / 2; compared != n {
		t.Fatalf("compared %d pairs, want %d", compared, n)
	}
}

func TestCompareAPK(t *testing.T) {
	t.Parallel()
	// apk's order: numbers as numbers, _alpha < _beta < _pre < _rc < release < _p,
	// letters after a number, then the -rN revision.
	ordered := []string{
		"1.2.3_alpha1-r0", "1.2.3_beta1-r0", "1.2.3_pre1-r0", "1.2.3_rc1-r0", "1.2.3_rc2-r0", "1.2.3-r0", "1.2.3-r1",
		"1.2.3-r7", "1.2.3-r15", "1.2.3_p1-r0", "1.2.3a-r0", "1.2.4-r0", "1.2.10-r0", "1.10-r0", "2.0-r0",
	}
	for i := range ordered {
		for j := range ordered {
			got, err := CompareAPK(ordered[i], ordered[j])
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if err != nil || got != want {
				t.Errorf("CompareAPK(%q, %q) = %d, %v, want %d", ordered[i], ordered[j], got, err, want)
			}
		}
	}
	// Where the orders differ: dpkg puts a release candidate after the release.
	if c, _ := CompareDeb("3.45.0_rc1-r0", "3.45.0-r0"); c != 1 {
		t.Fatalf("dpkg order of 3.45.0_rc1-r0 against 3.45.0-r0 = %d; the test of apk's order relies on 1", c)
	}
}

func TestComparerFor(t *testing.T) {
	t.Parallel()
	for eco, ok := range map[string]bool{"Debian:12": true, "Debian": true, "Ubuntu:22.04:LTS": true, "Alpine:v3.19": true, "PyPI": false, "npm": false, "": false} {
		if Supported(eco) != ok {
			t.Errorf("Supported(%q) = %v, want %v", eco, !ok, ok)
		}
	}
}
