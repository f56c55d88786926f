package httpx

import (
	"net/netip"
	"testing"
)

// TestAddressBucket: an IPv6 client is counted by its /64, which it
// usually holds whole; IPv4 (and IPv4 mapped into IPv6) by its address.
func TestAddressBucket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, addr, want string }{
		{"ok/ipv4", "192.0.2.7", "192.0.2.7"},
		{"ok/ipv4-mapped", "::ffff:192.0.2.7", "192.0.2.7"},
		{"ok/ipv6-by-64", "2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"ok/invalid", "", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			if got := AddressBucket(a); got != tc.want {
				t.Fatalf("AddressBucket(%s) = %s, want %s", tc.addr, got, tc.want)
			}
		})
	}
}
