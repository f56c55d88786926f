// Package risk scores sign-in attempts and users for risk: impossible
// travel, unfamiliar sign-in properties, addresses on anonymiser or
// threat lists, password spray, brute force and leaked passwords.
//
// The package is pure. It takes plain values (a SignIn, a History the
// caller backs with its store) and returns plain values (an Assessment of
// Detections), so every detector is table-tested without a network or a
// database, and the same code scores a live sign-in and a replayed one.
// The caller resolves the country, coordinates and network of the address
// (internal/geoip) and the browser and platform of the user agent first.
//
// Levels map one to one onto the sign-in and user risk conditions of a
// policy (none, low, medium, high).
package risk

import (
	"fmt"
	"net/netip"
	"time"
)

// Level is how likely it is that a sign-in or user is compromised.
// The zero value is None, so an unset level never looks risky.
type Level uint8

// Levels, in increasing order; Max relies on that order.
const (
	None Level = iota
	Low
	Medium
	High
)

// String returns none, low, medium or high, the spelling policies use.
func (l Level) String() string {
	switch l {
	case None:
		return "none"
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// MarshalText writes the level as String does; an out-of-range level is
// an error rather than a string no policy would match.
func (l Level) MarshalText() ([]byte, error) {
	if l > High {
		return nil, fmt.Errorf("risk level %d out of range", uint8(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText reads a level written by MarshalText; "" is None, as it
// is in a policy request.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLevel reads none, low, medium or high; "" is None.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "", "none":
		return None, nil
	case "low":
		return Low, nil
	case "medium":
		return Medium, nil
	case "high":
		return High, nil
	}
	return None, fmt.Errorf("unknown risk level %q (want none, low, medium or high)", s)
}

// Max returns the highest of the levels, None for none: the risk of a
// sign-in is that of its most serious detection.
func Max(levels ...Level) Level {
	m := None
	for _, l := range levels {
		m = max(m, l)
	}
	return m
}

// Detection types: which detector spoke. They are stable codes that the
// sign-in log, the admin UI and alert rules match on.
const (
	TypeTravel     = "travel"
	TypeUnfamiliar = "unfamiliar-properties"
	TypeIPList     = "ip-list"
	TypeSpray      = "password-spray"
	TypeBruteForce = "brute-force"
	TypeLeaked     = "leaked-credentials"
	TypeAdmin      = "admin"
)

// Reasons: what exactly the detector saw. Stable, like the types.
const (
	ReasonImpossibleTravel     = "impossible-travel"
	ReasonAtypicalTravel       = "atypical-travel"
	ReasonUnfamiliarProperties = "unfamiliar-properties"
	ReasonListedIP             = "listed-ip"
	ReasonPasswordSpray        = "password-spray"
	ReasonBruteForce           = "brute-force"
	ReasonLeakedPassword       = "leaked-password"
	ReasonConfirmedCompromised = "admin-confirmed-compromised"
)

// Detection is one finding. Evidence holds the facts behind it as
// strings, so that it can be logged and shown as it is; the keys each
// detector writes are listed in docs/risk.md.
type Detection struct {
	Type     string            `json:"type"`
	Level    Level             `json:"level"`
	Reason   string            `json:"reason"`
	Evidence map[string]string `json:"evidence,omitempty"`
}

// SignIn is one sign-in attempt, as the caller resolved it.
type SignIn struct {
	UserID string
	Time   time.Time
	IP     netip.Addr
	// Country is an ISO 3166-1 alpha-2 code; empty when unknown.
	Country string
	// Latitude and Longitude are set when HasCoordinates is (a city
	// database); travel falls back to country centres otherwise.
	Latitude, Longitude float64
	HasCoordinates      bool
	// ASN is the autonomous system the address belongs to; 0 when
	// unknown, and the /24 (IPv4) or /48 (IPv6) stands in for it.
	ASN uint
	// Browser and Platform come from the user agent (chrome, firefox,
	// ...; windows, macos, ios, ... as policy names them).
	Browser, Platform string
	// DeviceID is the credential id or device cookie the attempt
	// presented; empty when none.
	DeviceID string
	// Success is whether the attempt proved the password (or other first
	// factor).
	Success bool
}

// History is what the detectors need to know about the past. It is
// narrow so that the application can answer it from its store with a few
// indexed queries, and tests from a slice (see MemoryHistory). None of
// its answers may include the attempt being assessed.
type History interface {
	// Recent returns up to n of the user's successful sign-ins, newest
	// first.
	Recent(userID string, n int) []SignIn
	// Failures counts the failed attempts on the user's account at or
	// after since.
	Failures(userID string, since time.Time) int
	// FailedAccounts counts the distinct accounts with at least one
	// failed attempt from an address in network at or after since.
	FailedAccounts(network netip.Prefix, since time.Time) int
}

// Assessment is the risk of one sign-in attempt.
type Assessment struct {
	// SignInRisk is the highest level among Detections.
	SignInRisk Level `json:"sign_in_risk"`
	// Detections are in a fixed order: travel, unfamiliar properties, IP
	// lists, spray, brute force.
	Detections []Detection `json:"detections,omitempty"`
}

// network is the address's /24 (IPv4) or /48 (IPv6): the block one
// customer or one site usually gets, so a network stands in for an
// unknown ASN and groups a sprayer's neighbouring addresses.
func network(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
