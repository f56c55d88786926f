package gateway

import (
	"errors"
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
)

// The gateway decides every request, but most are routine reads that an
// administrator tuning step-up does not want one log row each for, and a
// log write per request would cap the gateway's throughput. So it writes
// to the sign-in log only the decisions that matter for tuning:
//
//   - every challenge and every block;
//   - every allow under a rule that asks for an authentication context,
//     a max_age or single-use elevation (a transfer, an admin page);
//   - every allow where a report-only policy would have blocked or
//     challenged, so administrators can count what enabling it would do.
//
// Routine allows are only counted (stepgate_decisions_total). The
// per-policy explanation, which visits every policy and allocates, is
// computed only for decisions that are logged.

// maxRequestIDLen bounds the request id copied into the log: it comes
// from the client or the proxy in front, and must not bloat the log.
const maxRequestIDLen = 128

// sensitive reports whether the rule marks a moment worth logging even
// when it is allowed.
func (ru *rule) sensitive() bool { return ru.context != "" || ru.maxAge > 0 || ru.singleUse }

// logged reports whether a browser decision goes to the sign-in log.
func (v *verdict) logged(ru *rule) bool {
	return v.Outcome != policy.OutcomeAllow || ru.sensitive() || v.ReportOnlyUnmet > 0
}

// browserEntry describes a browser decision (access.Record).
func (g *Gateway) browserEntry(r *http.Request, rt *route, id *identity, v *verdict, took time.Duration) audit.SignIn {
	e := audit.SignIn{
		Source: "gateway", RequestID: requestID(r), UserID: id.user.ID, Username: id.user.Username, App: rt.app,
		LatencyMicros: took.Microseconds(),
	}
	access.Record(&e, v.snap, v.req, &v.Verdict)
	return e
}

// tokenEntry describes a token's decision (access.Record). The
// client's kind is its user agent: a token says nothing of it.
func (g *Gateway) tokenEntry(r *http.Request, rt *route, tok *bearerEntry, id *identity, v *verdict, took time.Duration) audit.SignIn {
	e := audit.SignIn{
		Source: "gateway", RequestID: requestID(r), UserID: id.user.ID, Username: id.user.Username, App: rt.app,
		LatencyMicros: took.Microseconds(),
	}
	if !tok.found { // a service client's token
		e.UserID, e.Username = tok.claims.Subject, tok.claims.Username
	}
	access.Record(&e, v.snap, v.req, &v.Verdict)
	e.ClientApp = r.UserAgent()
	return e
}

// unlogged refuses a request whose decision the sign-in log could not
// take (a full buffer configured to fail closed, or a log shutting
// down): no decision goes through unrecorded.
func (g *Gateway) unlogged(w http.ResponseWriter, r *http.Request, err error) {
	// A full buffer is counted by stepgate_signin_log_full_total; a log
	// line per refused request would only add to the overload.
	if !errors.Is(err, audit.ErrLogFull) {
		g.Log.ErrorContext(r.Context(), "write gateway decision to the sign-in log", "host", r.Host, "path", r.URL.Path, "err", err)
	}
	g.refuse(w, r, httpx.StatusOf(err), "This request could not be recorded in the sign-in log, so it was not let through. Try again in a moment.")
}

// requestID is the X-Request-Id the client or a proxy in front sent,
// when it is short visible ASCII; anything else is left out rather than
// stored.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if len(id) > maxRequestIDLen {
		return ""
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return ""
		}
	}
	return id
}
