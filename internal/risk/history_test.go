package risk

import (
	"net/netip"
	"testing"
	"time"
)

func TestMemoryHistory(t *testing.T) {
	t.Parallel()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	ok := func(user string, m int) SignIn {
		return SignIn{UserID: user, Time: at(m), IP: netip.MustParseAddr("192.0.2.1"), Success: true}
	}
	// Added out of order on purpose.
	h := NewMemoryHistory(ok("alice", 3), ok("alice", 1), ok("bob", 2), ok("alice", 2),
		failure("alice", "203.0.113.1", at(5)), failure("bob", "203.0.113.2", at(4)),
		failure("alice", "203.0.113.1", at(6)), failure("carol", "198.51.100.1", at(7)))
	t.Run("ok/recent-newest-first", func(t *testing.T) {
		t.Parallel()
		r := h.Recent("alice", 2)
		if len(r) != 2 || !r[0].Time.Equal(at(3)) || !r[1].Time.Equal(at(2)) {
			t.Errorf("Recent = %+v", r)
		}
		if len(h.Recent("alice", 10)) != 3 || len(h.Recent("nobody", 10)) != 0 {
			t.Error("Recent lengths wrong")
		}
	})
	t.Run("ok/failures", func(t *testing.T) {
		t.Parallel()
		if n := h.Failures("alice", at(0)); n != 2 {
			t.Errorf("Failures(alice) = %d, want 2", n)
		}
		if n := h.Failures("alice", at(6)); n != 1 {
			t.Errorf("Failures(alice, since the second) = %d, want 1 (since is inclusive)", n)
		}
	})
	t.Run("ok/failed-accounts", func(t *testing.T) {
		t.Parallel()
		if n := h.FailedAccounts(netip.MustParsePrefix("203.0.113.0/24"), at(0)); n != 2 {
			t.Errorf("FailedAccounts = %d, want 2 (alice twice counts once)", n)
		}
		if n := h.FailedAccounts(netip.MustParsePrefix("203.0.113.0/24"), at(5)); n != 1 {
			t.Errorf("FailedAccounts since 5 = %d, want 1", n)
		}
	})
}
