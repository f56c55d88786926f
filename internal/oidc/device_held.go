package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Held statements ride on the device authorization records: the
// database gateway holds a statement that needs more proof, and its
// client (psql, a driver) shows the user code and link the way a device
// shows its own. The record is bound to the one user whose session sent
// the statement: nobody else can see, approve or deny it. The device
// code is the gateway's handle and never leaves the server, and the
// token endpoint refuses it.

// heldRecord is what a device record holds for a held statement.
type heldRecord struct {
	UserID      string           `json:"user_id"`
	Database    string           `json:"database"`
	Contexts    []string         `json:"contexts,omitempty"`
	Statement   policy.Statement `json:"statement"`
	ProofsAfter time.Time        `json:"proofs_after,omitzero"`
	From        string           `json:"from,omitempty"`
}

// errHeldNotGrant refuses a held statement's handle at the token
// endpoint.
var errHeldNotGrant = errors.New("a held statement's code is not a device grant")

// HoldStatement stores h for its user to approve within lifetime, under
// the same quotas as device authorizations.
func (p *Provider) HoldStatement(ctx context.Context, h access.HeldStatement, lifetime time.Duration) (access.HoldTicket, error) {
	if h.UserID == "" || h.Database == "" {
		return access.HoldTicket{}, errors.New("a held statement needs its user and database")
	}
	now := p.Now()
	rec := deviceRecord{
		ClientID: h.Database, CreatedAt: now.UTC(), ExpiresAt: now.Add(lifetime).UTC(), Status: deviceStatusPending,
		Held: &heldRecord{UserID: h.UserID, Database: h.Database, Contexts: h.Contexts, Statement: h.Statement,
			ProofsAfter: h.ProofsAfter.UTC(), From: h.From},
	}
	handle, userCode, err := p.storeDevice(ctx, rec)
	if err != nil {
		return access.HoldTicket{}, err
	}
	shown := FormatUserCode(userCode)
	return access.HoldTicket{Handle: handle, UserCode: shown, Link: p.Issuer + deviceQueryPath(shown), Expires: rec.ExpiresAt}, nil
}

// deviceQueryPath is the verification page's address for a user code.
func deviceQueryPath(shown string) string {
	return PathDevice + "?user_code=" + shown
}

// HeldAnswer is the gateway's poll of a held statement. An approval is
// handed over once: the record turns redeemed in the same swap, so a
// second poll (a replay, another node) finds it gone.
func (p *Provider) HeldAnswer(ctx context.Context, handle string) (access.HoldAnswer, error) {
	now := p.Now()
	var out access.HoldAnswer
	err := devices.At(handle).Update(ctx, p.Store, func(cur deviceRecord) (deviceRecord, error) {
		out = access.HoldAnswer{}
		switch {
		case cur.Held == nil:
			return cur, errHeldNotGrant
		case cur.Status == deviceStatusApproved:
			if cur.Auth == nil {
				return cur, fmt.Errorf("held statement approved without proofs: %w", kvspace.ErrCorrupt)
			}
			out = access.HoldAnswer{State: access.HoldApproved, Proofs: access.TokenProofs(cur.Auth.Proofs)}
			cur.Status, cur.Auth = deviceStatusRedeemed, nil
			return cur, nil
		case cur.Status == deviceStatusDenied:
			out = access.HoldAnswer{State: access.HoldDenied, Why: cur.Reason}
			return cur, errNoChange
		case cur.Status == deviceStatusRedeemed || !now.Before(cur.ExpiresAt):
			out = access.HoldAnswer{State: access.HoldGone}
			return cur, errNoChange
		}
		out = access.HoldAnswer{State: access.HoldPending}
		return cur, errNoChange
	})
	switch {
	case errors.Is(err, errNoChange):
		return out, nil
	case errors.Is(err, store.ErrNotFound):
		return access.HoldAnswer{State: access.HoldGone}, nil
	}
	return out, err
}

// errNoChange ends an update that only reads.
var errNoChange = errors.New("no change")

// ReleaseHeld forgets a held statement whose wait is over, so it stops
// counting against the quotas at once and its code leads nowhere.
func (p *Provider) ReleaseHeld(ctx context.Context, t access.HoldTicket) {
	ctx = context.WithoutCancel(ctx)
	_ = devices.At(t.Handle).Delete(ctx, p.Store)
	if code, err := NormalizeUserCode(t.UserCode); err == nil {
		_ = userCodes.At(code).Delete(ctx, p.Store)
	}
}

// describeHeld fills the page's view of a held statement.
func describeHeld(out *oauth.DeviceRequest, h *heldRecord) {
	out.Database, out.Command, out.Class = h.Database, h.Statement.Command, h.Statement.Class
	out.Tables, out.Labels, out.From = slices.Clone(h.Statement.Tables), slices.Clone(h.Statement.Labels), h.From
}

// answerHeld records the signed-in user's answer to a held statement. A
// denial is final and the gateway refuses the statement. An approval is
// decided as the gateway decides the statement (its database, contexts
// and facts) on the browser session's proofs, only those made after the
// hold for a single-use step-up: a challenge sends the user to step up
// and back, a block denies, an allow hands the session's proofs to the
// gateway, which judges the statement again with them. Every answer is
// written to the sign-in log first.
func (p *Provider) answerHeld(r *http.Request, d deviceRef, s store.Session, u store.User, approve bool) (oauth.DeviceAnswer, error) {
	ctx := r.Context()
	h := d.rec.Held
	start := time.Now()
	snap := p.snapshotFor(h.Database)
	req := p.Access(r, u, &s, h.Database, p.Now())
	req.AuthContexts, req.Statement = h.Contexts, h.Statement
	entry := audit.SignIn{Source: "database", App: h.Database, UserID: u.ID, Username: u.Username}
	entry.Statement = &audit.Statement{Command: h.Statement.Command, Class: h.Statement.Class, Tables: h.Statement.Tables, Labels: h.Statement.Labels}
	if !approve {
		v := access.Verdict{Outcome: policy.OutcomeBlock, Reason: reason.DeviceDenied}
		if err := p.logHeld(r, &entry, snap, req, v, start); err != nil {
			return oauth.DeviceAnswer{}, err
		}
		if err := p.answer(ctx, d, deviceStatusDenied, "you denied the statement in the browser", nil); err != nil {
			return oauth.DeviceAnswer{}, err
		}
		return oauth.DeviceAnswer{Step: oauth.DeviceDenied, Database: h.Database}, nil
	}
	ask := access.Ask{Snapshot: snap, Request: req}
	if !h.ProofsAfter.IsZero() {
		ask.ReaskAfter, ask.Reask = h.ProofsAfter, access.ReaskSingleUse
	}
	methods := func() ([]string, error) { return access.AvailableMethods(ctx, p.Store, p.Methods.Names(), u) }
	v, err := access.Decide(ask, methods)
	if err != nil {
		return oauth.DeviceAnswer{}, err
	}
	if err := p.logHeld(r, &entry, snap, req, v, start); err != nil {
		return oauth.DeviceAnswer{}, err
	}
	switch v.Outcome {
	case policy.OutcomeBlock:
		why := "the access policies refuse this statement (" + string(v.Reason) + ")"
		if err := p.answer(ctx, d, deviceStatusDenied, why, nil); err != nil {
			return oauth.DeviceAnswer{}, err
		}
		return oauth.DeviceAnswer{Step: oauth.DeviceBlocked, Why: why, Database: h.Database}, nil
	case policy.OutcomeChallenge:
		if v.PasswordChange {
			return oauth.DeviceAnswer{Step: oauth.DevicePasswordChange, Why: "change your password first"}, nil
		}
		return oauth.DeviceAnswer{Step: oauth.DeviceStepUp, Methods: v.Methods, Why: "the statement needs " + describeNeeds(v.Missing)}, nil
	}
	proofs := s.Events
	if !h.ProofsAfter.IsZero() {
		proofs = slices.DeleteFunc(slices.Clone(proofs), func(e store.AuthEvent) bool { return !e.Time.After(h.ProofsAfter) })
	}
	if err := p.answer(ctx, d, deviceStatusApproved, "", &authState{UserID: u.ID, Proofs: proofs}); err != nil {
		return oauth.DeviceAnswer{}, err
	}
	p.Log.InfoContext(ctx, "held statement approved", "database", h.Database, "user", u.ID)
	return oauth.DeviceAnswer{Step: oauth.DeviceApproved, Database: h.Database}, nil
}

func (p *Provider) logHeld(r *http.Request, e *audit.SignIn, snap *policy.Snapshot, req *policy.Request, v access.Verdict, start time.Time) error {
	if p.SignIns == nil {
		return nil
	}
	access.Record(e, snap, req, &v)
	e.ClientApp = r.UserAgent()
	e.LatencyMicros = time.Since(start).Microseconds()
	return p.SignIns(r.Context(), *e)
}
