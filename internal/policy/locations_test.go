package policy

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func TestLocationTableLookup(t *testing.T) {
	t.Parallel()
	table := buildLocations([]locationInput{
		{name: "office", trusted: true, prefixes: prefixes("10.0.0.0/8", "2001:db8::/32")},
		{name: "lab", prefixes: prefixes("10.1.0.0/16", "10.1.2.3/32")},
		{name: "everything-v6", prefixes: prefixes("::/0")},
		{name: "everything-v4", prefixes: prefixes("0.0.0.0/0")},
		{name: "countries", countries: []string{"DE"}, includeUnknownCountries: true},
	})
	tests := []struct {
		name string
		ip   string
		want []string
	}{
		{"ok/office-only", "10.200.0.1", []string{"office", "everything-v6", "everything-v4"}},
		{"ok/office-and-lab", "10.1.2.3", []string{"office", "lab", "everything-v6", "everything-v4"}},
		{"ok/first-of-lab", "10.1.0.0", []string{"office", "lab", "everything-v6", "everything-v4"}},
		{"ok/last-of-lab", "10.1.255.255", []string{"office", "lab", "everything-v6", "everything-v4"}},
		{"ok/after-lab", "10.2.0.0", []string{"office", "everything-v6", "everything-v4"}},
		{"ok/mapped-v4", "::ffff:10.1.0.1", []string{"office", "lab", "everything-v6", "everything-v4"}},
		{"ok/v6-office", "2001:db8:ffff::1", []string{"office", "everything-v6"}},
		{"ok/v6-last-address", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", []string{"everything-v6"}},
		{"ok/v6-first-address", "::", []string{"everything-v6"}},
		{"ok/public-v4", "198.51.100.1", []string{"everything-v6", "everything-v4"}},
		{"ok/zone-ignored", "fe80::1%eth0", []string{"everything-v6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := table.byIP(netip.MustParseAddr(tt.ip))
			for i, name := range table.names {
				want := false
				for _, w := range tt.want {
					want = want || w == name
				}
				if got.has(i) != want {
					t.Errorf("%s in %s = %v, want %v", tt.ip, name, got.has(i), want)
				}
			}
		})
	}
	if table.byIP(netip.Addr{}).empty() != true {
		t.Error("an invalid address must be in no location")
	}
	if !table.byCountry("").has(4) || !table.byCountry("DE").has(4) || table.byCountry("FR").has(4) {
		t.Error("country lookup: unknown and DE should match, FR should not")
	}
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := parseRange(s)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

// TestLocationTableMatchesNaive compares the interval table with checking
// every prefix one by one, on random overlapping ranges.
func TestLocationTableMatchesNaive(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			b[0], b[1] = 0x20, 0x01 // keep v6 addresses near each other so ranges overlap
			for i := 2; i < 16; i++ {
				b[i] = byte(r.IntN(4))
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	var in []locationInput
	for l := range 40 {
		var ps []netip.Prefix
		for range 1 + r.IntN(4) {
			v6 := r.IntN(2) == 0
			bits := 8 + r.IntN(25)
			if v6 {
				bits = 16 + r.IntN(113)
			}
			p, _ := randAddr(v6).Prefix(bits)
			ps = append(ps, p)
		}
		in = append(in, locationInput{name: string(rune('a' + l)), prefixes: ps})
	}
	table := buildLocations(in)
	for range 20000 {
		ip := randAddr(r.IntN(2) == 0)
		got := table.byIP(ip)
		for i, l := range in {
			want := false
			for _, p := range l.prefixes {
				want = want || p.Contains(ip)
			}
			if got.has(i) != want {
				t.Fatalf("%s in %v: table says %v, prefixes say %v", ip, l.prefixes, got.has(i), want)
			}
		}
	}
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, err string }{
		{"10.0.0.0/8", "10.0.0.0/8", ""},
		{"192.0.2.1", "192.0.2.1/32", ""},
		{"2001:db8::/32", "2001:db8::/32", ""},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", ""},
		{"::ffff:10.0.0.1", "10.0.0.1/32", ""},
		{"10.0.0.0/33", "", "is not a valid CIDR; write it like 10.0.0.0/8"},
		{"2001:db8::/129", "", "write it like 2001:db8::/32"},
		{"10.0.0.1/8", "", "did you mean 10.0.0.0/8?"},
		{"office", "", "is not a valid IP address or CIDR"},
	}
	for _, tt := range tests {
		p, err := parseRange(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseRange(%q) error = %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || p.String() != tt.want):
			t.Errorf("parseRange(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
		}
	}
}

func TestLocationCond(t *testing.T) {
	t.Parallel()
	snap := mustCompile(t, `named_locations:
  - {name: office, trusted: true, ip_ranges: [10.0.0.0/8]}
  - {name: lab, ip_ranges: [10.1.0.0/16]}
  - {name: eu, countries: [DE, FR]}
policies: []
`)
	tests := []struct {
		name    string
		cond    IncludeExclude
		ip      string
		country string
		want    Reason
	}{
		{"ok/include-all", IncludeExclude{Include: []string{"all"}}, "198.51.100.1", "", ""},
		{"ok/include-trusted", IncludeExclude{Include: []string{"all-trusted"}}, "10.9.9.9", "", ""},
		{"fail/include-trusted-public", IncludeExclude{Include: []string{"all-trusted"}}, "198.51.100.1", "DE", ReasonLocationNotIncluded},
		{"ok/include-country", IncludeExclude{Include: []string{"eu"}}, "198.51.100.1", "FR", ""},
		{"fail/include-country-other", IncludeExclude{Include: []string{"eu"}}, "198.51.100.1", "US", ReasonLocationNotIncluded},
		{"fail/exclude-trusted", IncludeExclude{Include: []string{"all"}, Exclude: []string{"all-trusted"}}, "10.1.1.1", "", ReasonLocationExcluded},
		{"fail/exclude-only", IncludeExclude{Exclude: []string{"lab"}}, "10.1.1.1", "", ReasonLocationExcluded},
		{"ok/exclude-only-elsewhere", IncludeExclude{Exclude: []string{"lab"}}, "10.2.1.1", "", ""},
		{"ok/unset", IncludeExclude{}, "10.1.1.1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &compiler{locations: snap.locations}
			lc := c.locationCond(nil, "x", tt.cond)
			if len(c.problems) > 0 {
				t.Fatal(c.problems)
			}
			ctx := evalCtx{snap: snap}
			r := &Request{IP: netip.MustParseAddr(tt.ip), Country: tt.country}
			if got := lc.match(ctx.where(r)); got != tt.want {
				t.Errorf("match = %q, want %q", got, tt.want)
			}
		})
	}
}
