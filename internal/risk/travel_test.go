package risk

import (
	"testing"
	"time"
)

func TestTravel(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	last := t0
	at := func(d time.Duration, lat, lon float64, country string) SignIn {
		s := home(last.Add(d))
		s.Latitude, s.Longitude, s.Country = lat, lon, country
		return s
	}
	countryOnly := func(s SignIn) SignIn {
		s.HasCoordinates, s.Latitude, s.Longitude = false, 0, 0
		return s
	}
	hist := homeHistory(10, last)
	tests := []struct {
		name   string
		in     SignIn
		recent []SignIn
		want   Level
		reason string
	}{
		{"ok/same-place", at(time.Minute, 51.5, -0.13, "GB"), hist, None, ""},
		{"ok/london-paris-three-hours", at(3*time.Hour, 48.86, 2.35, "FR"), hist, None, ""},
		{"ok/mobile-jump-under-100km-in-a-minute", at(time.Minute, 51.75, -1.26, "GB"), hist, None, ""},
		{"ok/london-new-york-twelve-hours", at(12*time.Hour, 40.71, -74.0, "US"), hist, None, ""},
		{"fail/london-sydney-one-hour", at(time.Hour, -33.87, 151.2, "AU"), hist, High, ReasonImpossibleTravel},
		{"fail/london-new-york-five-hours", at(5*time.Hour, 40.71, -74.0, "US"), hist, High, ReasonImpossibleTravel},
		{"fail/london-paris-ten-minutes", at(10*time.Minute, 48.86, 2.35, "FR"), hist, High, ReasonImpossibleTravel},
		{"fail/same-second", at(0, 48.86, 2.35, "FR"), hist, High, ReasonImpossibleTravel},
		{"fail/london-new-york-eight-hours-atypical", at(8*time.Hour, 40.71, -74.0, "US"), hist, Low, ReasonAtypicalTravel},
		{"fail/country-centres-gb-au-one-hour", countryOnly(at(time.Hour, 0, 0, "AU")), []SignIn{countryOnly(hist[0])}, High, ReasonImpossibleTravel},
		{"ok/country-centres-same-country", countryOnly(at(time.Minute, 0, 0, "GB")), []SignIn{countryOnly(hist[0])}, None, ""},
		{"ok/country-centres-us-ca-neighbours", countryOnly(at(time.Hour, 0, 0, "CA")), []SignIn{countryOnly(at(0, 0, 0, "US"))}, None, ""},
		{"fail/mixed-coordinates-and-centre", countryOnly(at(time.Hour, 0, 0, "JP")), hist, High, ReasonImpossibleTravel},
		{"ok/unknown-country-no-guess", countryOnly(at(time.Minute, 0, 0, "XX")), hist, None, ""},
		{"ok/previous-unknown", at(time.Minute, -33.87, 151.2, "AU"), []SignIn{countryOnly(at(0, 0, 0, ""))}, None, ""},
		{"ok/invalid-coordinates-fall-back", at(time.Minute, 200, 0, "GB"), hist, None, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recent := tt.recent
			if len(recent) < 5 {
				// Past the learning period, with the case's sign-in newest.
				recent = append(recent, hist[:5]...)
			}
			d, ok := e.travel(tt.in, recent)
			if ok != (tt.want != None) || d.Level != tt.want || d.Reason != tt.reason {
				t.Fatalf("travel = %v %+v, want level %v reason %q", ok, d, tt.want, tt.reason)
			}
			if ok {
				for _, k := range []string{"distance_km", "speed_kmh", "elapsed", "basis", "from_country", "to_country"} {
					if _, has := d.Evidence[k]; !has {
						t.Errorf("evidence lacks %q: %v", k, d.Evidence)
					}
				}
			}
		})
	}
	t.Run("ok/learning-period", func(t *testing.T) {
		t.Parallel()
		if d, ok := e.travel(at(time.Hour, -33.87, 151.2, "AU"), hist[:4]); ok {
			t.Errorf("travel during the learning period: %+v", d)
		}
	})
	t.Run("ok/custom-max-speed", func(t *testing.T) {
		t.Parallel()
		slow := newEngine(t, Config{MaxSpeedKmh: 100})
		d, ok := slow.travel(at(time.Hour, 48.86, 2.35, "FR"), hist)
		if !ok || d.Level != High || d.Evidence["max_speed_kmh"] != "100" {
			t.Errorf("london-paris in 1h at max 100 km/h: %v %+v", ok, d)
		}
	})
}

func TestHaversine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want                   float64
	}{
		{"ok/london-paris", 51.5, -0.13, 48.86, 2.35, 343},
		{"ok/london-sydney", 51.5, -0.13, -33.87, 151.2, 16990},
		{"ok/zero", 10, 10, 10, 10, 0},
		{"ok/antipodes", 0, 0, 0, 180, 20015},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := haversineKm(tt.lat1, tt.lon1, tt.lat2, tt.lon2)
			if got < tt.want-0.01*tt.want-1 || got > tt.want+0.01*tt.want+1 {
				t.Errorf("distance %.0f km, want about %.0f", got, tt.want)
			}
		})
	}
}

func TestCentres(t *testing.T) {
	t.Parallel()
	if len(centres) < 60 {
		t.Errorf("only %d country centres", len(centres))
	}
	for code, c := range centres {
		if len(code) != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' || !validCoordinates(c.lat, c.lon) || c.radiusKm <= 0 {
			t.Errorf("bad centre %s: %+v", code, c)
		}
	}
}
