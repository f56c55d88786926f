package geoip

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// writeDB builds a small database in a temporary directory; tests never
// download one.
func writeDB(t *testing.T, dbType string, records map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "test.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}

func country(code string) mmdbtype.Map {
	return mmdbtype.Map{"iso_code": mmdbtype.String(code)}
}

func cityFixture(t *testing.T) string {
	return writeDB(t, "GeoLite2-City", map[string]mmdbtype.Map{
		"192.0.2.0/24": {
			"country":  country("DE"),
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(52.52), "longitude": mmdbtype.Float64(13.405)},
		},
		"198.51.100.0/24": {"country": country("fr")},
		"203.0.113.0/24":  {"registered_country": country("JP")},
		"2001:db8::/32":   {"country": country("NL"), "location": mmdbtype.Map{"latitude": mmdbtype.Float64(52.37), "longitude": mmdbtype.Float64(4.89)}},
		"100.64.0.0/10":   {"country": country("X1")},
		"100.128.0.0/16":  {"country_code": mmdbtype.String("BR"), "country": mmdbtype.String("Brazil")},
		"2001:db9::/32":   {"location": mmdbtype.Map{"latitude": mmdbtype.Float64(1)}},
		"2001:dba::/32":   {"country": country("deu")},
		"172.16.0.0/12":   {},
	})
}

func TestLookup(t *testing.T) {
	t.Parallel()
	db, err := Open(cityFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tests := []struct {
		name string
		ip   string
		want Location
	}{
		{"ok/city", "192.0.2.10", Location{Country: "DE", Latitude: 52.52, Longitude: 13.405, HasCoordinates: true}},
		{"ok/country-only-upper-cased", "198.51.100.1", Location{Country: "FR"}},
		{"ok/registered-country-fallback", "203.0.113.9", Location{Country: "JP"}},
		{"ok/ipv6", "2001:db8::1", Location{Country: "NL", Latitude: 52.37, Longitude: 4.89, HasCoordinates: true}},
		{"ok/ipv4-mapped", "::ffff:192.0.2.1", Location{Country: "DE", Latitude: 52.52, Longitude: 13.405, HasCoordinates: true}},
		{"ok/zone-dropped", "2001:db8::1%eth0", Location{Country: "NL", Latitude: 52.37, Longitude: 4.89, HasCoordinates: true}},
		{"ok/ipinfo-layout", "100.128.1.1", Location{Country: "BR"}},
		{"ok/empty-record", "172.16.0.1", Location{}},
		{"fail/not-in-database", "10.0.0.1", Location{}},
		{"fail/malformed-code-dropped", "100.64.0.1", Location{}},
		{"fail/three-letter-code-dropped", "2001:dba::1", Location{}},
		{"fail/half-coordinates-dropped", "2001:db9::1", Location{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := db.Lookup(netip.MustParseAddr(tt.ip))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Lookup(%s) = %+v, want %+v", tt.ip, got, tt.want)
			}
			if c := db.Country(netip.MustParseAddr(tt.ip)); c != tt.want.Country {
				t.Errorf("Country(%s) = %q, want %q", tt.ip, c, tt.want.Country)
			}
		})
	}
	if loc, err := db.Lookup(netip.Addr{}); err != nil || loc != (Location{}) {
		t.Errorf("invalid address: %+v, %v", loc, err)
	}
	if db.Type() != "GeoLite2-City" || db.BuildTime().IsZero() {
		t.Errorf("metadata: type %q, built %v", db.Type(), db.BuildTime())
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	if err := os.WriteFile(corrupt, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	asn := writeDB(t, "GeoLite2-ASN", map[string]mmdbtype.Map{"192.0.2.0/24": {"autonomous_system_number": mmdbtype.Uint32(64496)}})
	tests := []struct {
		name, path string
		want       string
		is         error
	}{
		{"fail/missing", filepath.Join(dir, "nope.mmdb"), "no such file", fs.ErrNotExist},
		{"fail/directory", dir, "is a directory", nil},
		{"fail/corrupt", corrupt, "not a MaxMind DB (.mmdb) file, or a corrupt one", nil},
		{"fail/empty", empty, "not a MaxMind DB (.mmdb) file, or a corrupt one", nil},
		{"fail/asn-database", asn, "it is a GeoLite2-ASN database", ErrNoCountryData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, err := Open(tt.path)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "open geoip database") {
				t.Errorf("error %q, want it to start with \"open geoip database\" and mention %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}
