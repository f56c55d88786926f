package oidc

import (
	"errors"
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/session"
)

// AnswerDevice records the signed-in user's answer to the device
// authorization of a typed user code. A denial is final. An approval is
// decided exactly as an authorization request of the same client and
// scopes: the conditional access policies on the session's proofs,
// through the decision core. A challenge sends the user to sign in,
// step up or change the password first, after which the page asks
// again; a block denies the device; an allow stores what the session
// proved, which the tokens then carry (acr, amr, prf), so the policies
// judge their refreshes and the gateway judges their requests as for a
// browser sign-in. Every answer is written to the sign-in log before it
// takes effect.
func (p *Provider) AnswerDevice(r *http.Request, typed string, approve bool) (oauth.DeviceAnswer, error) {
	ctx := r.Context()
	s, u, err := p.loadSession(ctx, r)
	if errors.Is(err, session.ErrNoSession) {
		return oauth.DeviceAnswer{Step: oauth.DeviceSignIn, Why: "sign in first"}, nil
	}
	if err != nil {
		return oauth.DeviceAnswer{}, err
	}
	d, err := p.findDevice(ctx, u.ID, typed)
	if err != nil {
		return oauth.DeviceAnswer{}, err
	}
	if d.rec.Held != nil {
		return p.answerHeld(r, d, s, u, approve)
	}
	if !approve {
		entry := audit.SignIn{Source: "oidc", App: d.rec.ClientID, UserID: u.ID, Username: u.Username}
		req := p.Access(r, u, &s, d.rec.ClientID, p.Now())
		access.DescribeRequest(&entry, req)
		if err := p.logDecision(r, &entry, verdict{reason: reason.DeviceDenied}, "block", 0); err != nil {
			return oauth.DeviceAnswer{}, err
		}
		if err := p.answer(ctx, d, deviceStatusDenied, string(reason.DeviceDenied), nil); err != nil {
			return oauth.DeviceAnswer{}, err
		}
		p.Log.InfoContext(ctx, "device authorization denied by the user", "client", d.rec.ClientID, "user", u.ID)
		return oauth.DeviceAnswer{Step: oauth.DeviceDenied}, nil
	}
	return p.approveDevice(r, d)
}

// approveDevice decides an approval as continueFlow decides an
// authorization request.
func (p *Provider) approveDevice(r *http.Request, d deviceRef) (oauth.DeviceAnswer, error) {
	ctx := r.Context()
	start := time.Now()
	f := &flow{ClientID: d.rec.ClientID, Scope: d.rec.Scope, MaxAge: -1, CreatedAt: d.rec.CreatedAt}
	if c, err := p.Clients.Get(ctx, d.rec.ClientID); err == nil {
		f.Capabilities = c.Capabilities
	}
	entry := audit.SignIn{Source: "oidc", App: f.ClientID}
	v, err := p.decide(ctx, r, f, &entry)
	if err != nil {
		return oauth.DeviceAnswer{}, err
	}
	outcome := v.outcome()
	took := time.Since(start)
	p.Metrics.Decision("oidc-device", outcome, f.ClientID, took)
	if err := p.logDecision(r, &entry, v, outcome, took); err != nil {
		return oauth.DeviceAnswer{}, err
	}
	if v.err != nil {
		// The policies refuse this client to this user: the device is
		// told at once rather than left polling until the code expires.
		if err := p.answer(ctx, d, deviceStatusDenied, string(v.reason), nil); err != nil {
			return oauth.DeviceAnswer{}, err
		}
		return oauth.DeviceAnswer{Step: oauth.DeviceBlocked, Why: v.err.Description}, nil
	}
	switch v.kind {
	case verdictLogin:
		return oauth.DeviceAnswer{Step: oauth.DeviceSignIn, Why: v.why}, nil
	case verdictStepUp:
		return oauth.DeviceAnswer{Step: oauth.DeviceStepUp, Methods: v.methods, Why: v.why}, nil
	case verdictPasswordChange:
		return oauth.DeviceAnswer{Step: oauth.DevicePasswordChange, Why: v.why}, nil
	}
	a := v.auth
	if err := p.answer(ctx, d, deviceStatusApproved, "", &a); err != nil {
		return oauth.DeviceAnswer{}, err
	}
	p.Log.InfoContext(ctx, "device authorization approved", "client", f.ClientID, "user", a.UserID)
	return oauth.DeviceAnswer{Step: oauth.DeviceApproved}, nil
}
