package gateway

import (
	"net/netip"
	"testing"
)

// TestAddressBucket: the per-address limit counts an IPv6 /64 as one
// address, since one client usually holds a whole /64 and could
// otherwise post from a new address each time.
func TestAddressBucket(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
	} {
		if x, y := addressBucket(netip.MustParseAddr(tc.a)), addressBucket(netip.MustParseAddr(tc.b)); x != y {
			t.Errorf("%s and %s count apart (%s, %s), want together", tc.a, tc.b, x, y)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.7", "192.0.2.8"},
	} {
		if x, y := addressBucket(netip.MustParseAddr(tc.a)), addressBucket(netip.MustParseAddr(tc.b)); x == y {
			t.Errorf("%s and %s count together (%s), want apart", tc.a, tc.b, x)
		}
	}
}
