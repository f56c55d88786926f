package risk

import (
	"math"
	"strconv"
	"time"
)

const (
	// coordinateAllowanceKm is how far from the user a city database may
	// place an address; it is subtracted from the distance on each side.
	coordinateAllowanceKm = 50
	// nearbyKm: mobile networks route through gateways that can sit in
	// the next city, so a jump shorter than this is never travel, however
	// quick.
	nearbyKm = 100
	// minElapsed stands in for a zero or negative gap (two sign-ins in
	// the same second, clocks slightly apart) so speed stays finite.
	minElapsed = time.Minute
	// earthRadiusKm is the mean radius of the Earth.
	earthRadiusKm = 6371.0
)

// travel compares the attempt with the user's previous successful
// sign-in. Reaching it faster than MaxSpeedKmh is impossible travel
// (high): the same password used from two places no one can travel
// between in the time means it is known to someone else. Faster than half
// of that is atypical travel (low) rather than medium: an airliner makes
// 500-900 km/h gate to gate, so medium would challenge every traveller
// who signs in on landing, while a low still shows up in the log and in
// user risk.
func (e *Engine) travel(in SignIn, recent []SignIn) (Detection, bool) {
	if e.learning(recent) || len(recent) == 0 {
		return Detection{}, false
	}
	prev := recent[0]
	from, ok := placeOf(prev)
	if !ok {
		return Detection{}, false
	}
	to, ok := placeOf(in)
	if !ok {
		return Detection{}, false
	}
	dist := haversineKm(from.lat, from.lon, to.lat, to.lon)
	if dist < nearbyKm {
		return Detection{}, false
	}
	// Both ends are uncertain by their allowance: only the distance that
	// must have been covered counts.
	allowance := from.allowance + to.allowance
	covered := dist - allowance
	if covered <= 0 {
		return Detection{}, false
	}
	elapsed := in.Time.Sub(prev.Time)
	hours := max(elapsed, minElapsed).Hours()
	speed := covered / hours
	d := Detection{Type: TypeTravel}
	switch {
	case speed > e.cfg.MaxSpeedKmh:
		d.Level, d.Reason = High, ReasonImpossibleTravel
	case speed > e.cfg.MaxSpeedKmh/2:
		d.Level, d.Reason = Low, ReasonAtypicalTravel
	default:
		return Detection{}, false
	}
	basis := "coordinates"
	if from.centre || to.centre {
		basis = "country"
	}
	d.Evidence = map[string]string{
		"distance_km":   strconv.Itoa(int(math.Round(dist))),
		"allowance_km":  strconv.Itoa(int(math.Round(allowance))),
		"elapsed":       max(elapsed, 0).Round(time.Second).String(),
		"speed_kmh":     strconv.Itoa(int(math.Round(speed))),
		"basis":         basis,
		"from_country":  prev.Country,
		"to_country":    in.Country,
		"previous_time": prev.Time.UTC().Format(time.RFC3339),
		"max_speed_kmh": strconv.Itoa(int(math.Round(e.cfg.MaxSpeedKmh))),
		"previous_ip":   addrString(prev),
		"attempt_ip":    addrString(in),
	}
	return d, true
}

// place is a point on the map and how far off it may be.
type place struct {
	lat, lon, allowance float64
	// centre is true for a country's population centre rather than the
	// address's own coordinates.
	centre bool
}

// placeOf uses the sign-in's coordinates when it has them and its
// country's population centre otherwise; an unknown country has no
// place, so it never counts as travel.
func placeOf(s SignIn) (place, bool) {
	if s.HasCoordinates && validCoordinates(s.Latitude, s.Longitude) {
		return place{lat: s.Latitude, lon: s.Longitude, allowance: coordinateAllowanceKm}, true
	}
	c, ok := centres[s.Country]
	if !ok {
		return place{}, false
	}
	return place{lat: c.lat, lon: c.lon, allowance: c.radiusKm, centre: true}, true
}

// validCoordinates drops values no database should hold, so a corrupt
// record cannot produce a distance of NaN or a trip across the poles.
func validCoordinates(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// haversineKm is the great-circle distance between two points.
func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := func(d float64) float64 { return d * math.Pi / 180 }
	dLat := rad(lat2 - lat1)
	dLon := rad(lon2 - lon1)
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(rad(lat1))*math.Cos(rad(lat2))*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(a, 1)))
}

func addrString(s SignIn) string {
	if !s.IP.IsValid() {
		return ""
	}
	return s.IP.String()
}
