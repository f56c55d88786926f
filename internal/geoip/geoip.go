// Package geoip maps IP addresses to countries (and, with a city
// database, coordinates) using a MaxMind DB (.mmdb) file such as
// GeoLite2-Country, GeoLite2-City or DB-IP Lite. The policy engine uses
// the country for named locations; the risk engine uses coordinates for
// impossible-travel checks.
//
// Stepgate never downloads a database: the operator provides the file,
// and a missing or unreadable file is a clear error at startup rather
// than a silent "unknown country" for everyone.
package geoip

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// ErrNoCountryData means the file is a MaxMind DB of a kind that maps
// addresses to something other than places (ASN, ISP, ...).
var ErrNoCountryData = errors.New("database has no country data")

// noCountryTypes are database types that carry no location at all.
var noCountryTypes = []string{"ASN", "ISP", "Connection-Type", "Domain", "Anonymous-IP", "IP-Risk"}

// DB is an open database. It is safe for concurrent use.
type DB struct {
	r    *maxminddb.Reader
	path string
}

// Location is what the database knows about an address.
type Location struct {
	// Country is an upper-case ISO 3166-1 alpha-2 code; empty when the
	// address is not in the database (private ranges, for one).
	Country string
	// Latitude and Longitude are set when HasCoordinates is; a country
	// database has none.
	Latitude, Longitude float64
	HasCoordinates      bool
}

// Open opens the database at path.
func Open(path string) (*DB, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open geoip database: %w", err)
	} else if fi.IsDir() {
		return nil, fmt.Errorf("open geoip database %s: it is a directory; give the path of the .mmdb file", path)
	}
	r, err := maxminddb.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("open geoip database: %w", err)
		}
		return nil, fmt.Errorf("open geoip database %s: not a MaxMind DB (.mmdb) file, or a corrupt one: %w", path, err)
	}
	db := &DB{r: r, path: path}
	if err := db.checkType(); err != nil {
		_ = r.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) checkType() error {
	t := db.r.Metadata.DatabaseType
	for _, bad := range noCountryTypes {
		if strings.Contains(t, bad) {
			return fmt.Errorf("open geoip database %s: it is a %s database: %w; use a country or city database such as GeoLite2-Country", db.path, t, ErrNoCountryData)
		}
	}
	return nil
}

// Type is the database type from the file's metadata, like
// "GeoLite2-City".
func (db *DB) Type() string { return db.r.Metadata.DatabaseType }

// BuildTime is when the database was built; operators alert on stale
// data from it.
func (db *DB) BuildTime() time.Time { return db.r.Metadata.BuildTime() }

// record covers the MaxMind/DB-IP layout (country.iso_code, with
// registered_country as a fallback) and IPinfo's flat country_code.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

// Lookup returns what the database knows about ip. An address that is
// not in the database is not an error: it has an empty Location.
func (db *DB) Lookup(ip netip.Addr) (Location, error) {
	if !ip.IsValid() {
		return Location{}, nil
	}
	res := db.r.Lookup(ip.Unmap().WithZone(""))
	if err := res.Err(); err != nil {
		return Location{}, fmt.Errorf("geoip lookup %s: %w", ip, err)
	}
	if !res.Found() {
		return Location{}, nil
	}
	var rec record
	if err := res.Decode(&rec); err != nil {
		// IPinfo files store "country" as a name, which does not fit the
		// struct above; their code is a flat country_code.
		var code string
		if err2 := res.DecodePath(&code, "country_code"); err2 != nil || code == "" {
			return Location{}, fmt.Errorf("geoip lookup %s: %w", ip, err)
		}
		return Location{Country: isoCode(code)}, nil
	}
	loc := Location{Country: isoCode(rec.Country.ISOCode)}
	if loc.Country == "" {
		loc.Country = isoCode(rec.RegisteredCountry.ISOCode)
	}
	if lat, lon := rec.Location.Latitude, rec.Location.Longitude; lat != nil && lon != nil {
		loc.Latitude, loc.Longitude, loc.HasCoordinates = *lat, *lon, true
	}
	return loc, nil
}

// Country returns ip's ISO country code, or "" when it is unknown or
// the lookup failed. Policies treat "" as the unknown country, which is
// what a failed lookup means to them.
func (db *DB) Country(ip netip.Addr) string {
	loc, err := db.Lookup(ip)
	if err != nil {
		return ""
	}
	return loc.Country
}

// isoCode accepts only two ASCII letters, upper-cased, so a malformed
// record can never produce a value that looks like a country to policy.
func isoCode(s string) string {
	if len(s) != 2 {
		return ""
	}
	b := []byte(strings.ToUpper(s))
	for _, c := range b {
		if c < 'A' || c > 'Z' {
			return ""
		}
	}
	return string(b)
}

// Close releases the database (unmapping the file).
func (db *DB) Close() error { return db.r.Close() }
