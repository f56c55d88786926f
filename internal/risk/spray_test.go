package risk

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// failure is a failed attempt on user from ip at t.
func failure(user, ip string, at time.Time) SignIn {
	return SignIn{UserID: user, Time: at, IP: netip.MustParseAddr(ip)}
}

// failingAccounts is one failure on each of n accounts, from ip(i).
func failingAccounts(n int, ip func(i int) string) []SignIn {
	out := make([]SignIn, n)
	for i := range out {
		out[i] = failure(fmt.Sprintf("user%03d", i), ip(i), t0.Add(-time.Duration(n-i)*time.Second))
	}
	return out
}

func TestSpray(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	oneIP := func(int) string { return "203.0.113.7" }
	sameBlock := func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }
	spread := func(i int) string { return fmt.Sprintf("198.51.%d.1", i) }
	v6Block := func(i int) string { return fmt.Sprintf("2001:db8:1:%x::1", i) }
	repeated := func(n int) []SignIn {
		out := make([]SignIn, 0, n)
		for i := range n {
			out = append(out, failure("user000", "203.0.113.7", t0.Add(-time.Duration(i+1)*time.Second)))
		}
		return out
	}
	old := failingAccounts(30, oneIP)
	for i := range old {
		old[i].Time = old[i].Time.Add(-2 * time.Hour)
	}
	tests := []struct {
		name   string
		past   []SignIn
		ip     string
		source string
	}{
		{"ok/nineteen-accounts", failingAccounts(19, oneIP), "203.0.113.7", ""},
		{"ok/many-failures-one-account", repeated(50), "203.0.113.7", ""},
		{"ok/spread-over-networks", failingAccounts(100, spread), "198.51.0.1", ""},
		{"ok/outside-window", old, "203.0.113.7", ""},
		{"ok/other-network", failingAccounts(40, oneIP), "192.0.2.1", ""},
		{"fail/twenty-accounts-one-ip", failingAccounts(20, oneIP), "203.0.113.7", "203.0.113.7/32"},
		{"fail/rotating-within-24", failingAccounts(25, sameBlock), "203.0.113.200", "203.0.113.0/24"},
		{"fail/rotating-within-48", failingAccounts(25, v6Block), "2001:db8:1:ffff::9", "2001:db8:1::/48"},
		{"fail/mapped-address", failingAccounts(20, oneIP), "::ffff:203.0.113.7", "203.0.113.7/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewMemoryHistory(tt.past...)
			d, ok := e.spray(SignIn{UserID: "victim", Time: t0, IP: netip.MustParseAddr(tt.ip)}, h)
			if ok != (tt.source != "") || d.Evidence["source"] != tt.source {
				t.Fatalf("spray = %v %+v, want source %q", ok, d, tt.source)
			}
			if ok && (d.Level != High || d.Reason != ReasonPasswordSpray) {
				t.Errorf("detection %+v", d)
			}
		})
	}
}

func TestBruteForce(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	fails := func(n int, gap time.Duration) []SignIn {
		out := make([]SignIn, n)
		for i := range out {
			out[i] = failure("alice", fmt.Sprintf("198.51.%d.1", i), t0.Add(-time.Duration(i+1)*gap))
		}
		return out
	}
	tests := []struct {
		name string
		past []SignIn
		user string
		want bool
	}{
		{"ok/nine-failures", fails(9, time.Minute), "alice", false},
		{"ok/spread-over-a-day", fails(30, time.Hour), "alice", false},
		{"ok/other-account", fails(20, time.Minute), "bob", false},
		{"fail/ten-failures-from-a-botnet", fails(10, time.Minute), "alice", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, ok := e.bruteForce(SignIn{UserID: tt.user, Time: t0, Success: true}, NewMemoryHistory(tt.past...))
			if ok != tt.want {
				t.Fatalf("bruteForce = %v %+v, want %v", ok, d, tt.want)
			}
			if ok && (d.Level != Medium || d.Reason != ReasonBruteForce || d.Evidence["failures"] != "10") {
				t.Errorf("detection %+v", d)
			}
		})
	}
}
