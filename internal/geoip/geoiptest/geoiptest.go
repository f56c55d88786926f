// Package geoiptest writes small GeoIP databases for tests, so no test
// needs a downloaded one.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// CountryDB writes a GeoLite2-Country style database mapping each CIDR
// to an ISO country code, and returns its path (in t.TempDir()).
func CountryDB(t testing.TB, countries map[string]string) string {
	t.Helper()
	records := make(map[string]mmdbtype.Map, len(countries))
	for cidr, code := range countries {
		records[cidr] = mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(code)}}
	}
	return write(t, "GeoLite2-Country", "country.mmdb", records)
}

// City is what CityDB stores for a network.
type City struct {
	// Country is an ISO country code; empty writes no country.
	Country             string
	Latitude, Longitude float64
}

// CityDB writes a GeoLite2-City style database mapping each CIDR to a
// country and coordinates, and returns its path (in t.TempDir()).
func CityDB(t testing.TB, cities map[string]City) string {
	t.Helper()
	records := make(map[string]mmdbtype.Map, len(cities))
	for cidr, c := range cities {
		rec := mmdbtype.Map{"location": mmdbtype.Map{
			"latitude":  mmdbtype.Float64(c.Latitude),
			"longitude": mmdbtype.Float64(c.Longitude),
		}}
		if c.Country != "" {
			rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(c.Country)}
		}
		records[cidr] = rec
	}
	return write(t, "GeoLite2-City", "city.mmdb", records)
}

func write(t testing.TB, dbType, name string, records map[string]mmdbtype.Map) string {
	t.Helper()
	// Reserved networks (documentation ranges, private space) are what
	// tests use, so they must be insertable.
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatalf("geoiptest: %v", err)
		}
		if err := tree.Insert(network, rec); err != nil {
			t.Fatalf("geoiptest: insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path) //nolint:gosec // a path in the test's own temporary directory
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}
