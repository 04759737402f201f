package job

import "testing"

func TestCanMoveEveryPairWithinARevision(t *testing.T) {
	t.Parallel()
	// allowed[from] lists the statuses a job may move to in the same revision.
	allowed := map[Status][]Status{
		Pending:   {Scheduled, Running, Stopped, Error, Success},
		Scheduled: {Running, Stopped, Error, Success},
		Running:   {Stopped, Error, Success},
		Stopped:   {},
		Error:     {},
		Success:   {},
	}
	for _, from := range Statuses {
		for _, to := range Statuses {
			want := false
			for _, a := range allowed[from] {
				if a == to {
					want = true
				}
			}
			if got := CanMove(from, 5, to, 5); got != want {
				t.Errorf("CanMove(%s -> %s, same revision) = %v, want %v", from, to, got, want)
			}
			if !CanMove(from, 5, to, 6) {
				t.Errorf("CanMove(%s -> %s, newer revision) = false, want true", from, to)
			}
			if CanMove(from, 5, to, 4) {
				t.Errorf("CanMove(%s -> %s, older revision) = true, want false", from, to)
			}
		}
		if CanMove(from, 5, "Bogus", 6) {
			t.Errorf("CanMove(%s -> unknown status) = true", from)
		}
	}
}

func TestStatusCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s     Status
		code  int
		final bool
	}{{Pending, 0, false}, {Scheduled, 1, false}, {Running, 2, false}, {Stopped, 3, true}, {Error, 3, true}, {Success, 3, true}, {"pending", -1, false}} {
		if tc.s.Code() != tc.code || tc.s.Final() != tc.final || (tc.s.Validate() == nil) != (tc.code >= 0) {
			t.Errorf("%q: code %d final %v validate %v", tc.s, tc.s.Code(), tc.s.Final(), tc.s.Validate())
		}
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	id := NewID()
	if !ValidID(id) || !ValidPolicyID(id) || id == NewID() {
		t.Fatalf("NewID() = %q", id)
	}
	exec := ExecutionID(id, 1700000000)
	if exec != id+"@1700000000" || !ValidID(exec) || ValidPolicyID(exec) {
		t.Fatalf("ExecutionID = %q", exec)
	}
	for _, bad := range []string{"", "..", "../../etc/passwd", id[:23], id + "0", "0123456789ABCDEF01234567",
		id + "@", id + "@x", id + "@01", id + "@1@2", "0123456789abcdef0123456/", "0123456789abcdef012345%2F"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}
