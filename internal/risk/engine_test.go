package risk_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/geoip"
	"github.com/stepgate/stepgate/internal/geoip/geoiptest"
	"github.com/stepgate/stepgate/internal/risk"
)

var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// locate fills in what the application takes from the geolocation
// database, as it does before calling Assess.
func locate(t testing.TB, db *geoip.DB, s risk.SignIn) risk.SignIn {
	t.Helper()
	loc, err := db.Lookup(s.IP)
	if err != nil {
		t.Fatal(err)
	}
	s.Country, s.Latitude, s.Longitude, s.HasCoordinates = loc.Country, loc.Latitude, loc.Longitude, loc.HasCoordinates
	return s
}

func openCityDB(t testing.TB, cities map[string]geoiptest.City) *geoip.DB {
	t.Helper()
	db, err := geoip.Open(geoiptest.CityDB(t, cities))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newEngine(t testing.TB, c risk.Config) *risk.Engine {
	t.Helper()
	e, err := risk.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAssessTravelWithCityDatabase(t *testing.T) {
	t.Parallel()
	db := openCityDB(t, map[string]geoiptest.City{
		"192.0.2.0/24":    {Country: "GB", Latitude: 51.5, Longitude: -0.13},
		"203.0.113.0/24":  {Country: "FR", Latitude: 48.86, Longitude: 2.35},
		"198.51.100.0/24": {Country: "AU", Latitude: -33.87, Longitude: 151.2},
	})
	e := newEngine(t, risk.Config{})
	attempt := func(ip string, at time.Time) risk.SignIn {
		return locate(t, db, risk.SignIn{
			UserID: "alice", Time: at, IP: netip.MustParseAddr(ip),
			Browser: "firefox", Platform: "macos", DeviceID: "laptop", Success: true,
		})
	}
	// Alice commutes between London and Paris; her last sign-in is in
	// London at start.
	h := risk.NewMemoryHistory()
	for i := range 8 {
		ip := "192.0.2.10"
		if i%3 == 0 {
			ip = "203.0.113.10"
		}
		h.Add(attempt(ip, start.Add(-time.Duration(8-i)*24*time.Hour)))
	}
	h.Add(attempt("192.0.2.10", start))

	tests := []struct {
		name   string
		in     risk.SignIn
		want   risk.Level
		reason string
	}{
		{"ok/london-paris-three-hours", attempt("203.0.113.20", start.Add(3*time.Hour)), risk.None, ""},
		{"fail/london-sydney-one-hour", attempt("198.51.100.20", start.Add(time.Hour)), risk.High, risk.ReasonImpossibleTravel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := e.Assess(tt.in, h)
			if a.SignInRisk != tt.want {
				t.Fatalf("SignInRisk = %v, want %v: %+v", a.SignInRisk, tt.want, a.Detections)
			}
			if tt.reason != "" && !slices.ContainsFunc(a.Detections, func(d risk.Detection) bool { return d.Reason == tt.reason }) {
				t.Errorf("no %s detection: %+v", tt.reason, a.Detections)
			}
			for _, d := range a.Detections {
				if d.Type == risk.TypeTravel {
					t.Logf("%s: %s %v", tt.name, d.Reason, d.Evidence)
				}
			}
		})
	}
}

func TestAssessNilHistory(t *testing.T) {
	t.Parallel()
	tor := risk.NewIPList("tor", risk.High, []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")})
	e := newEngine(t, risk.Config{IPLists: []risk.IPList{tor}})
	a := e.Assess(risk.SignIn{UserID: "alice", IP: netip.MustParseAddr("203.0.113.9"), Time: start}, nil)
	if a.SignInRisk != risk.High || len(a.Detections) != 1 || a.Detections[0].Evidence["list"] != "tor" {
		t.Errorf("Assess = %+v", a)
	}
	if a := e.Assess(risk.SignIn{UserID: "alice", IP: netip.MustParseAddr("192.0.2.9"), Time: start}, nil); a.SignInRisk != risk.None || a.Detections != nil {
		t.Errorf("Assess unlisted = %+v", a)
	}
}

// TestPasswordSpraySimulation replays a spray: one address tries two
// common passwords against each of 200 accounts, one attempt every five
// seconds, then guesses one account's password.
func TestPasswordSpraySimulation(t *testing.T) {
	t.Parallel()
	e := newEngine(t, risk.Config{})
	h := risk.NewMemoryHistory()
	attacker := netip.MustParseAddr("203.0.113.66")
	const accounts, rounds = 200, 2
	first, flagged, n := 0, 0, 0
	at := start
	for range rounds {
		for u := range accounts {
			n++
			in := risk.SignIn{UserID: fmt.Sprintf("user%03d", u), Time: at, IP: attacker, Browser: "python-requests"}
			a := e.Assess(in, h)
			if slices.ContainsFunc(a.Detections, func(d risk.Detection) bool { return d.Type == risk.TypeSpray }) {
				flagged++
				if first == 0 {
					first = n
					t.Logf("spray first detected at attempt %d: %v", n, a.Detections[len(a.Detections)-1].Evidence)
				}
				if a.SignInRisk != risk.High {
					t.Errorf("attempt %d: spray at %v, want high", n, a.SignInRisk)
				}
			} else if first != 0 {
				t.Errorf("attempt %d: not flagged after the spray was detected", n)
			}
			h.Add(in)
			at = at.Add(5 * time.Second)
		}
	}
	// With the default threshold of 20 accounts, the attempt after the
	// 20th failing account is the first one flagged.
	if first != risk.DefaultSprayThreshold+1 {
		t.Errorf("spray first detected at attempt %d, want %d", first, risk.DefaultSprayThreshold+1)
	}
	t.Logf("spray: %d of %d attempts flagged high", flagged, n)
	guessed := e.Assess(risk.SignIn{UserID: "user150", Time: at, IP: attacker, Success: true}, h)
	if guessed.SignInRisk != risk.High {
		t.Errorf("the successful guess at the end is %v, want high", guessed.SignInRisk)
	}
}

// city is a place users live in or travel to; each has its own address
// blocks in the test's geolocation database.
type city struct {
	country  string
	lat, lon float64
}

var cities = []city{
	{"GB", 51.5, -0.13}, {"GB", 53.48, -2.24}, {"FR", 48.86, 2.35}, {"DE", 52.52, 13.4},
	{"DE", 48.14, 11.58}, {"ES", 40.42, -3.7}, {"US", 40.71, -74.0}, {"US", 41.88, -87.63},
	{"US", 37.77, -122.42}, {"CA", 43.65, -79.38}, {"AU", -33.87, 151.2}, {"JP", 35.68, 139.69},
	{"SG", 1.35, 103.82}, {"NL", 52.37, 4.9}, {"SE", 59.33, 18.07},
}

// Address plan: city c owns 10.c.0.0/16. Homes are 10.c.0-99.x under the
// city's broadband ASN 64500+c, mobile 10.c.200-249.x under ASN 65000+c,
// hotels 10.c.100-149.x under ASN 64800+c.
func cityBlocks() map[string]geoiptest.City {
	m := map[string]geoiptest.City{}
	for i, c := range cities {
		m[fmt.Sprintf("10.%d.0.0/16", i)] = geoiptest.City{Country: c.country, Latitude: c.lat, Longitude: c.lon}
	}
	return m
}

type user struct {
	id                string
	home              int
	laptop, phone     string
	browser, platform string
	phoneBrowser      string
	phonePlatform     string
}

// benignSignIns generates a deterministic month of ordinary life for
// 50 users, 20 sign-ins each: laptops at home, phones on mobile data, and
// now and then a trip by plane to another city (a hotel network, the
// laptop), with the time between sign-ins at least the flight. About one
// sign-in in 25 is preceded by a mistyped password.
func benignSignIns() (all []risk.SignIn, trips int) {
	rng := rand.New(rand.NewPCG(2026, 3))
	browsers := []string{"chrome", "firefox", "safari", "edge"}
	platforms := []string{"windows", "macos", "linux"}
	for u := range 50 {
		us := user{
			id: fmt.Sprintf("u%02d", u), home: u % len(cities),
			laptop: fmt.Sprintf("u%02d-laptop", u), phone: fmt.Sprintf("u%02d-phone", u),
			browser: browsers[u%len(browsers)], platform: platforms[u%len(platforms)],
			phoneBrowser: "safari", phonePlatform: "ios",
		}
		if u%2 == 1 {
			us.phoneBrowser, us.phonePlatform = "chrome", "android"
		}
		at := start.Add(time.Duration(rng.IntN(24*60)) * time.Minute)
		where := us.home
		awayLeft := 0
		for k := range 20 {
			gap := time.Duration(12+rng.IntN(60)) * time.Hour
			s := risk.SignIn{UserID: us.id, Success: true}
			switch {
			case awayLeft > 0:
				awayLeft--
				if awayLeft == 0 {
					// Fly home.
					gap = max(gap, flight(cities[where], cities[us.home], rng))
					where = us.home
				}
			case k >= 6 && rng.IntN(20) == 0:
				// Fly somewhere for one to three sign-ins.
				dest := (us.home + 1 + rng.IntN(len(cities)-1)) % len(cities)
				gap = max(gap, flight(cities[where], cities[dest], rng))
				where, awayLeft = dest, 1+rng.IntN(3)
				trips++
			}
			at = at.Add(gap)
			s.Time = at
			byPhone := k == 2 || k == 3 || (k >= 5 && rng.IntN(4) == 0)
			switch {
			case where != us.home:
				s.IP = netip.AddrFrom4([4]byte{10, byte(where), byte(100 + rng.IntN(50)), byte(1 + rng.IntN(250))})
				s.ASN = uint(64800 + where)
				s.DeviceID, s.Browser, s.Platform = us.laptop, us.browser, us.platform
			case byPhone:
				s.IP = netip.AddrFrom4([4]byte{10, byte(where), byte(200 + rng.IntN(50)), byte(1 + rng.IntN(250))})
				s.ASN = uint(65000 + where)
				s.DeviceID, s.Browser, s.Platform = us.phone, us.phoneBrowser, us.phonePlatform
			default:
				// Broadband addresses change now and then, within two blocks.
				s.IP = netip.AddrFrom4([4]byte{10, byte(where), byte(u*2 + rng.IntN(2)), byte(1 + rng.IntN(250))})
				s.ASN = uint(64500 + where)
				s.DeviceID, s.Browser, s.Platform = us.laptop, us.browser, us.platform
			}
			if rng.IntN(25) == 0 {
				typo := s
				typo.Success, typo.Time = false, s.Time.Add(-time.Minute)
				all = append(all, typo)
			}
			all = append(all, s)
		}
	}
	slices.SortStableFunc(all, func(a, b risk.SignIn) int { return a.Time.Compare(b.Time) })
	return all, trips
}

// flight is gate-to-gate time at 800 km/h plus an hour or more at each
// end: the quickest a traveller signs in again.
func flight(from, to city, rng *rand.Rand) time.Duration {
	km := greatCircleKm(from, to)
	return time.Duration((km/800 + 2 + rng.Float64()*6) * float64(time.Hour))
}

func greatCircleKm(a, b city) float64 {
	rad := math.Pi / 180
	dLat, dLon := (b.lat-a.lat)*rad, (b.lon-a.lon)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.lat*rad)*math.Cos(b.lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * 6371 * math.Asin(math.Sqrt(h))
}

// TestBenignReplay replays ordinary sign-ins and counts false alarms.
// None may be high; lows and mediums are the cost of noticing new
// devices and trips abroad, and are bounded.
func TestBenignReplay(t *testing.T) {
	t.Parallel()
	db := openCityDB(t, cityBlocks())
	e := newEngine(t, risk.Config{})
	attempts, trips := benignSignIns()
	h := risk.NewMemoryHistory()
	levels := map[risk.Level]int{}
	reasons := map[string]int{}
	successes := 0
	for _, s := range attempts {
		s = locate(t, db, s)
		a := e.Assess(s, h)
		h.Add(s)
		if !s.Success {
			continue
		}
		successes++
		levels[a.SignInRisk]++
		for _, d := range a.Detections {
			reasons[d.Reason+"/"+d.Level.String()]++
			if d.Level == risk.High {
				t.Errorf("false alarm at %v for %s: %s %v", s.Time, s.UserID, d.Reason, d.Evidence)
			}
		}
	}
	t.Logf("benign replay: %d attempts (%d successful), %d trips; sign-in risk none=%d low=%d medium=%d high=%d; detections %v",
		len(attempts), successes, trips, levels[risk.None], levels[risk.Low], levels[risk.Medium], levels[risk.High], reasons)
	if successes != 1000 {
		t.Fatalf("replayed %d successful sign-ins, want 1000", successes)
	}
	if levels[risk.High] != 0 {
		t.Errorf("%d high false alarms, want 0", levels[risk.High])
	}
	// A trip abroad is a new country (medium) and its flight may be
	// atypical (low); anything beyond that is noise.
	if levels[risk.Low] > 30 {
		t.Errorf("%d low, want at most 30 (3%%)", levels[risk.Low])
	}
	if levels[risk.Medium] > trips {
		t.Errorf("%d medium for %d trips, want at most one per trip", levels[risk.Medium], trips)
	}
}

// BenchmarkAssess scores one sign-in against a history of 10,000
// attempts (100 users with 90 sign-ins each and 1,000 failures over ten
// days) and a 10,000-prefix IP list.
func BenchmarkAssess(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := risk.NewMemoryHistory()
	for i := range 10_000 {
		s := risk.SignIn{
			UserID:  fmt.Sprintf("u%03d", i%100),
			Time:    start.Add(-time.Duration(10_000-i) * 86 * time.Second),
			IP:      netip.AddrFrom4([4]byte{10, byte(i % 100), byte(rng.IntN(4)), byte(1 + rng.IntN(250))}),
			Country: "GB", Latitude: 51.5, Longitude: -0.13, HasCoordinates: true,
			ASN: uint(64500 + i%100), Browser: "firefox", Platform: "linux", DeviceID: fmt.Sprintf("d%03d", i%100),
			Success: i%10 != 0,
		}
		if !s.Success {
			s.IP = netip.AddrFrom4([4]byte{198, 51, byte(rng.IntN(256)), byte(rng.IntN(256))})
		}
		h.Add(s)
	}
	prefixes := make([]netip.Prefix, 0, 10_000)
	for i := range 10_000 {
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i), byte(i >> 4), byte(i * 7), 0}), 24))
	}
	e := newEngine(b, risk.Config{IPLists: []risk.IPList{risk.NewIPList("threats", risk.High, prefixes)}})
	in := risk.SignIn{
		UserID: "u042", Time: start, IP: netip.MustParseAddr("10.42.9.9"),
		Country: "FR", Latitude: 48.86, Longitude: 2.35, HasCoordinates: true,
		ASN: 64999, Browser: "chrome", Platform: "windows", Success: true,
	}
	b.Run("memory-history", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if a := e.Assess(in, h); a.SignInRisk == risk.None {
				b.Fatal("expected detections")
			}
		}
	})
	// The detectors alone, with the history's answers ready, as an
	// indexed store query would hand them over.
	fixed := fixedHistory{recent: h.Recent(in.UserID, e.Config().FamiliarWindow)}
	b.Run("detectors-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if a := e.Assess(in, fixed); a.SignInRisk == risk.None {
				b.Fatal("expected detections")
			}
		}
	})
}

// fixedHistory answers with values computed once.
type fixedHistory struct {
	recent                   []risk.SignIn
	failures, failedAccounts int
}

func (f fixedHistory) Recent(string, int) []risk.SignIn           { return f.recent }
func (f fixedHistory) Failures(string, time.Time) int             { return f.failures }
func (f fixedHistory) FailedAccounts(netip.Prefix, time.Time) int { return f.failedAccounts }
