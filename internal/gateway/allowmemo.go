package gateway

import (
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/policy"
)

// allowMemo is a routine allow the decision core gave a cached identity
// (a browser's gateway cookie, or an API client's token), reused for the
// next request of the same lookup on the same rule, under the same
// policies, from the same client: most of a browsing session's (or an
// API client's) requests are that, and the decision is then the same. It lives in the identity's memo, so no longer than the lookup
// it belongs to (identityTTL), and continuous access evaluation drops it
// with the lookup (Forget).
//
// Only what the decision is made on is compared, and all of it is: the
// policy snapshot and the rule (the app and the context), the TCP peer
// and X-Forwarded-For (the client's address, and so its location), and
// the User-Agent (the platform). The session's proofs and the user are
// the lookup's own. What can change under it without any of these
// changing — the clock passing a sign-in frequency, a user risk raised
// below high — takes effect when the lookup is renewed, as a sign-out
// does. Sensitive rules (a context, max_age, single use), and allows a
// report-only policy would have refused, are never memoised: each such
// request is decided and logged. An allow made while the user held an
// elevated role is reused only until that role ends (until): one that
// outlived it would let a policy requiring the role pass on a role the
// user no longer holds.
type allowMemo struct {
	snap  *policy.Snapshot
	ru    *rule
	peer  string
	xff   []string
	ua    string
	acrs  []string
	until time.Time
}

// memoable reports whether the decision on ru may be reused.
func memoable(ru *rule, elevatedAfter bool) bool {
	return !ru.sensitive() && !elevatedAfter
}

// matches reports whether r, under snap and on ru at now, is the
// request m was decided for.
func (m *allowMemo) matches(snap *policy.Snapshot, ru *rule, r *http.Request, now time.Time) bool {
	return m.snap == snap && m.ru == ru && m.peer == peerHost(r) && m.ua == r.UserAgent() &&
		slices.Equal(m.xff, r.Header["X-Forwarded-For"]) && (m.until.IsZero() || now.Before(m.until))
}

// rememberAllow keeps v, a routine allow of r on ru for app at now, in
// id's memo.
func rememberAllow(id *identity, snap *policy.Snapshot, ru *rule, r *http.Request, v *access.Verdict, app string, now time.Time) {
	if id.memo == nil || v.Outcome != policy.OutcomeAllow || v.ReportOnlyUnmet > 0 {
		return
	}
	id.memo.allowed.Store(&allowMemo{snap: snap, ru: ru, peer: peerHost(r), xff: slices.Clone(r.Header["X-Forwarded-For"]),
		ua: r.UserAgent(), acrs: v.ACRs, until: id.user.GrantsEndAt(now, app)})
}

// remembered is the memoised allow of r on ru under snap at now, if any.
func remembered(id *identity, snap *policy.Snapshot, ru *rule, r *http.Request, now time.Time) (*allowMemo, bool) {
	if id.memo == nil {
		return nil, false
	}
	m := id.memo.allowed.Load()
	if m == nil || !m.matches(snap, ru, r, now) {
		return nil, false
	}
	return m, true
}

// peerHost is the TCP peer's address without its port: a browser opens
// several connections from one address.
func peerHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
