package geoiptest_test

import (
	"net/netip"
	"testing"

	"github.com/stepgate/stepgate/internal/geoip"
	"github.com/stepgate/stepgate/internal/geoip/geoiptest"
)

func TestFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		ip   string
		want geoip.Location
	}{
		{"ok/country", geoiptest.CountryDB(t, map[string]string{"192.0.2.0/24": "DE"}), "192.0.2.1", geoip.Location{Country: "DE"}},
		{"ok/city", geoiptest.CityDB(t, map[string]geoiptest.City{"198.51.100.0/24": {Country: "GB", Latitude: 51.5, Longitude: -0.13}}), "198.51.100.7",
			geoip.Location{Country: "GB", Latitude: 51.5, Longitude: -0.13, HasCoordinates: true}},
		{"ok/city-without-country", geoiptest.CityDB(t, map[string]geoiptest.City{"2001:db8::/32": {Latitude: -33.87, Longitude: 151.2}}), "2001:db8::1",
			geoip.Location{Latitude: -33.87, Longitude: 151.2, HasCoordinates: true}},
		{"fail/outside", geoiptest.CityDB(t, map[string]geoiptest.City{"198.51.100.0/24": {Country: "GB"}}), "203.0.113.1", geoip.Location{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, err := geoip.Open(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			got, err := db.Lookup(netip.MustParseAddr(tt.ip))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Lookup(%s) = %+v, want %+v", tt.ip, got, tt.want)
			}
		})
	}
}
