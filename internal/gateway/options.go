package gateway

import (
	"net/netip"
	"time"
)

// Options are what the gateway is set up with: its routes and the bounds
// it keeps. They say what the gateway section of the configuration says
// (docs/configuration.md, "gateway"), which the wiring checks and
// translates into them, defaults applied; the gateway itself knows no
// configuration file.
type Options struct {
	Routes []Route
	// ReplayBodyLimit is the largest request body, in bytes, kept
	// across a step-up so that the user's form is sent on after it.
	ReplayBodyLimit int
	// AssertionLifetime bounds the signed identity assertion an
	// upstream gets; a route may set its own.
	AssertionLifetime time.Duration
	// UpstreamTimeout bounds waiting for an upstream's response headers.
	UpstreamTimeout time.Duration
	// StripHeaders are removed from every incoming request before the
	// identity headers are added (X-Stepgate-* always are).
	StripHeaders []string
	// TrustedProxies are the peers that may ask the forward-auth
	// endpoints for a decision, compared with the TCP peer's address.
	TrustedProxies []netip.Prefix
	// KeptRequests bounds the requests kept across a sign-in or step-up.
	KeptRequests KeptRequests
}

// KeptRequests bounds what the gateway stores for requests waiting for a
// sign-in or step-up. Anyone can make it keep one, so the bounds are
// counted in the store, across every node, and clients with no session
// get a smaller budget. A zero bound keeps none.
type KeptRequests struct {
	// MaxCount and MaxBytes bound all kept requests at once: how many,
	// and their stored (encrypted) size.
	MaxCount, MaxBytes int
	// PerAddress is how many requests one client address (an IPv6 /64)
	// may have kept in each Window.
	PerAddress int
	Window     time.Duration
	// Anonymous* are the smaller budget of clients with no session:
	// largest body, share of the totals, and per address.
	AnonymousBodyLimit, AnonymousMaxCount, AnonymousMaxBytes, AnonymousPerAddress int
}

// Route is one protected application.
type Route struct {
	Name string
	// From is the public URL the route answers: scheme, host (with port
	// when not the default) and an optional path prefix.
	From string
	// To is the upstream URL; empty for a route served through
	// forward-auth only (the proxy in front forwards the request).
	To string
	// App is the app id policies target; empty means Name.
	App string
	// Challenge is the form of API challenges: ChallengeEntra, or the
	// RFC 9470 one for anything else.
	Challenge string
	// IdentityHeaders is what the upstream is told of the user: one of
	// the Identity* values; empty means IdentityAll.
	IdentityHeaders string
	// AllowPathParameters lets paths with ';' parameters through (rules
	// then match each segment without them); refused with 400 otherwise.
	AllowPathParameters bool
	// AllowNonASCIIPaths lets paths with characters outside ASCII
	// through (rules then match them folded); refused with 400 otherwise.
	AllowNonASCIIPaths bool
	// Environment names the policy environment the route's requests are
	// decided in (Deps.Environments); empty means Deps.Policies.
	Environment string
	// AssertionAudience is the aud of the route's assertion; empty means
	// the origin of To, or of From for a forward-auth route.
	AssertionAudience string
	// AssertionLifetime overrides Options.AssertionLifetime when set.
	AssertionLifetime time.Duration
	// Rules say what paths cost; the first that matches wins, and a
	// request none matches needs a signed-in user.
	Rules []Rule
}

// ChallengeEntra is Route.Challenge for Entra-style challenges
// (insufficient_claims with a claims parameter).
const ChallengeEntra = "entra"

// What a route tells its upstream of the user (Route.IdentityHeaders):
// the words of the configuration's identity_headers.
const (
	// IdentityAll is the plain X-Stepgate-* headers and the signed
	// assertion.
	IdentityAll = "all"
	// IdentityAssertion is X-Stepgate-Assertion alone, for an
	// application that verifies it.
	IdentityAssertion = "assertion"
	// IdentityPlain is the headers without the assertion, for an
	// application that trusts the network to the gateway.
	IdentityPlain = "plain"
	// IdentityNone tells the upstream nothing.
	IdentityNone = "none"
)

// Rule says what a path costs.
type Rule struct {
	// Path is exact ("/transfers", which also matches "/transfers/" and
	// "/transfers.json") or a prefix ending in "/*" ("/admin/*", which
	// also matches "/admin"); see docs/gateway.md, "How rules match".
	Path string
	// Methods limits the rule to these HTTP methods; empty means all.
	Methods []string
	// Context is the authentication context the rule requests.
	Context string
	// MaxAge requires a proof at most this old.
	MaxAge time.Duration
	// SingleUse makes a fresh proof authorize exactly the request that
	// asked for it, nothing after it.
	SingleUse bool
	// Anonymous lets requests in without a sign-in.
	Anonymous bool
}

// app is the app id policies target for the route.
func (r Route) app() string {
	if r.App != "" {
		return r.App
	}
	return r.Name
}
