package risk

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseIPList(t *testing.T) {
	t.Parallel()
	const file = `# Tor exit nodes, fetched by cron
192.0.2.1
198.51.100.0/24 ; SBL123
198.51.101.0/24
10.1.2.3/8

2001:db8::/32   # a provider
::ffff:203.0.113.0/120
fe80::1
`
	l, err := ParseIPList("tor", High, strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "tor" || l.Level != High {
		t.Errorf("name/level %q %v", l.Name, l.Level)
	}
	// 198.51.100.0/24 and 198.51.101.0/24 are adjacent and merge.
	if l.Len() != 6 {
		t.Errorf("Len() = %d, want 6: %+v", l.Len(), l.ranges)
	}
	tests := []struct {
		name string
		ip   string
		want bool
	}{
		{"ok/single-address", "192.0.2.1", true},
		{"ok/in-prefix", "198.51.100.77", true},
		{"ok/merged-neighbour", "198.51.101.255", true},
		{"ok/host-bits-masked", "10.200.0.1", true},
		{"ok/ipv6", "2001:db8:ffff::1", true},
		{"ok/mapped-prefix-as-ipv4", "203.0.113.5", true},
		{"ok/mapped-address", "::ffff:192.0.2.1", true},
		{"ok/zone-ignored", "fe80::1%eth0", true},
		{"fail/neighbour-address", "192.0.2.2", false},
		{"fail/just-below", "198.51.99.255", false},
		{"fail/just-above", "198.51.102.0", false},
		{"fail/other-ipv6", "2001:db9::1", false},
		{"fail/below-all", "0.0.0.1", false},
		{"fail/above-all", "ffff::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := l.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
	if l.Contains(netip.Addr{}) {
		t.Error("invalid address is listed")
	}
}

func TestParseIPListErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, want string
	}{
		{"fail/garbage", "192.0.2.1\nhello\n", "ip list x: line 2: \"hello\" is not an IP address"},
		{"fail/bad-prefix", "# c\n\n192.0.2.0/33\n", "ip list x: line 3: \"192.0.2.0/33\" is not a CIDR prefix"},
		{"fail/two-fields", "192.0.2.1 42\n", "ip list x: line 1: \"192.0.2.1 42\": want one address or CIDR prefix per line"},
		{"fail/zone", "fe80::1%eth0\n", "line 1: \"fe80::1%eth0\" is not an IP address"},
		{"fail/line-too-long", strings.Repeat("1", 70000), "ip list x: line 1: bufio.Scanner: token too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseIPList("x", Low, strings.NewReader(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNewIPListMerges(t *testing.T) {
	t.Parallel()
	l := NewIPList("x", Low, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("10.1.0.0/16"), // inside the /8
		netip.MustParsePrefix("255.255.255.255/32"),
		netip.MustParsePrefix("::/0"),
		{},
	})
	if l.Len() != 3 {
		t.Errorf("Len() = %d, want 3: %+v", l.Len(), l.ranges)
	}
	for ip, want := range map[string]bool{"10.255.255.255": true, "11.0.0.0": false, "255.255.255.255": true, "::1": true} {
		if l.Contains(netip.MustParseAddr(ip)) != want {
			t.Errorf("Contains(%s) != %v", ip, want)
		}
	}
}

func TestIPListDetection(t *testing.T) {
	t.Parallel()
	tor := NewIPList("tor", High, []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")})
	vpn := NewIPList("vpn", Low, []netip.Prefix{netip.MustParsePrefix("203.0.113.128/25")})
	e := newEngine(t, Config{IPLists: []IPList{tor, vpn}})
	tests := []struct {
		name  string
		ip    string
		lists []string
	}{
		{"ok/unlisted", "192.0.2.1", nil},
		{"fail/tor", "203.0.113.1", []string{"tor"}},
		{"fail/tor-and-vpn", "203.0.113.200", []string{"tor", "vpn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ds := e.ipLists(SignIn{IP: netip.MustParseAddr(tt.ip)})
			if len(ds) != len(tt.lists) {
				t.Fatalf("detections %+v, want lists %v", ds, tt.lists)
			}
			for i, d := range ds {
				if d.Evidence["list"] != tt.lists[i] || d.Reason != ReasonListedIP || d.Type != TypeIPList || d.Evidence["ip"] != tt.ip {
					t.Errorf("detection %+v", d)
				}
			}
		})
	}
}

// bigList is 10,000 scattered /24s and single addresses.
func bigList() IPList {
	ps := make([]netip.Prefix, 0, 10_000)
	for i := range 10_000 {
		a := netip.AddrFrom4([4]byte{byte(i * 7), byte(i >> 3), byte(i * 13), 0})
		bits := 24
		if i%2 == 0 {
			bits = 32
		}
		ps = append(ps, netip.PrefixFrom(a, bits))
	}
	return NewIPList("big", High, ps)
}

func BenchmarkIPListContains(b *testing.B) {
	l := bigList()
	ips := make([]netip.Addr, 256)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{byte(i), byte(i * 3), byte(i * 5), byte(i)})
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		l.Contains(ips[i%len(ips)])
	}
}

func FuzzParseIPList(f *testing.F) {
	f.Add("192.0.2.1\n198.51.100.0/24 # c\n::ffff:1.2.3.0/120\n")
	f.Add("2001:db8::/32;x\n\n")
	f.Fuzz(func(t *testing.T, file string) {
		l, err := ParseIPList("f", Low, strings.NewReader(file))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ip list f: ") {
				t.Fatalf("error without the list name: %v", err)
			}
			return
		}
		// Ranges must stay sorted and disjoint, or Contains misses.
		for i := 1; i < len(l.ranges); i++ {
			if l.ranges[i-1].last.Compare(l.ranges[i].first) >= 0 {
				t.Fatalf("ranges overlap: %+v", l.ranges)
			}
		}
		for _, r := range l.ranges {
			if !l.Contains(r.first) || !l.Contains(r.last) {
				t.Fatalf("range %v-%v not contained", r.first, r.last)
			}
		}
	})
}
