package riskservice

import (
	"context"
	"errors"
	"time"

	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
)

// cachedRisk is a user's risk state as read at a time.
type cachedRisk struct {
	state risk.UserRiskState
	at    time.Time
}

// userRiskTTL bounds how stale a cached user risk may be on another
// node; on this node Raise, Report and SetUserRisk drop the entry at
// once.
const userRiskTTL = 500 * time.Millisecond

// maxCachedRisks bounds the cache of users' risk; past it the cache is
// emptied and the next requests read the store again.
const maxCachedRisks = 10000

// UserRisk is the user's effective risk level for policies.
func (k *Service) UserRisk(ctx context.Context, userID string) string {
	st, err := k.cachedState(ctx, userID)
	if err != nil {
		k.log.WarnContext(ctx, "load user risk", "err", err)
		return ""
	}
	if l := st.Effective(k.now(), k.lowAgeOut); l != risk.None {
		return l.String()
	}
	return ""
}

// cachedState is the user's risk state, from the cache when it is
// fresh: every request the gateway decides asks, and the state changes
// rarely. Levels are worked out from it at each call, so a detection
// stops counting at its expiry, not a cache lifetime later.
func (k *Service) cachedState(ctx context.Context, userID string) (risk.UserRiskState, error) {
	now := k.now()
	k.mu.Lock()
	c, ok := k.userRisk[userID]
	k.mu.Unlock()
	if ok && now.Sub(c.at) < userRiskTTL && !now.Before(c.at) {
		return c.state, nil
	}
	st, err := load(ctx, k.kv, userRisks.At(userID))
	if err != nil {
		return st, err
	}
	k.mu.Lock()
	if len(k.userRisk) >= maxCachedRisks {
		clear(k.userRisk)
	}
	k.userRisk[userID] = cachedRisk{state: st, at: now}
	k.mu.Unlock()
	return st, nil
}

// forget drops the cached risk of userID after it changed here.
func (k *Service) forget(userID string) {
	k.mu.Lock()
	delete(k.userRisk, userID)
	k.mu.Unlock()
}

// Raise adds a detection to the user's risk. Reaching high is a security
// event: the user's sessions and tokens are revoked at once.
func (k *Service) Raise(ctx context.Context, userID string, d risk.Detection) {
	high := false
	err := k.updateUserRisk(ctx, userID, func(st *risk.UserRiskState) {
		before := st.Level
		st.Raise(d, k.now())
		high = st.Level == risk.High && before != risk.High
	})
	if err != nil {
		k.log.ErrorContext(ctx, "raise user risk", "err", err)
		return
	}
	k.log.WarnContext(ctx, "user risk raised", "user_id", userID, "reason", d.Reason, "level", d.Level.String())
	if high && k.revoker != nil {
		if err := k.revoker.RevokeUser(ctx, userID, "risk-high"); err != nil {
			k.log.ErrorContext(ctx, "revoke after high user risk", "err", err)
		}
	}
}

// FraudReported raises to high the risk of a user who answered a push
// request "this wasn't me": someone else holds their password.
func (k *Service) FraudReported(ctx context.Context, userID string) {
	k.Raise(ctx, userID, risk.Detection{Type: "user-reported", Level: risk.High, Reason: "user-reported-fraud",
		Evidence: map[string]string{"channel": "push"}})
}

// SecurityChangeReported raises to high the risk of a user who reported a
// change of their sign-in methods as not theirs: someone else had their
// password.
func (k *Service) SecurityChangeReported(ctx context.Context, userID string) {
	k.Raise(ctx, userID, risk.Detection{Type: "user-reported", Level: risk.High, Reason: "user-reported-security-change",
		Evidence: map[string]string{"channel": "security-notice"}})
}

// PasswordChanged clears the user's risk after a secure password change
// (one made right after a second factor, afterMFA): whoever held the old
// password holds nothing now. A change without one clears nothing, or a
// thief with the password could clear the risk their sign-in raised.
func (k *Service) PasswordChanged(ctx context.Context, userID string, afterMFA bool) {
	if !afterMFA {
		return
	}
	if err := k.updateUserRisk(ctx, userID, func(st *risk.UserRiskState) { st.Remediated(k.now()) }); err != nil {
		k.log.ErrorContext(ctx, "remediate user risk", "err", err)
		return
	}
	k.log.InfoContext(ctx, "user risk remediated by a secure password change", "user_id", userID)
}

// SetUserRisk applies an administrator's decision: confirm the account
// compromised (high, and revoked) or dismiss its risk.
func (k *Service) SetUserRisk(ctx context.Context, userID string, compromised bool) error {
	err := k.updateUserRisk(ctx, userID, func(st *risk.UserRiskState) {
		if compromised {
			st.ConfirmCompromised(k.now())
		} else {
			st.Dismiss(k.now())
		}
	})
	if err == nil && compromised && k.revoker != nil {
		err = k.revoker.RevokeUser(ctx, userID, "confirmed-compromised")
	}
	return err
}

func (k *Service) updateUserRisk(ctx context.Context, userID string, fn func(*risk.UserRiskState)) error {
	defer k.forget(userID)
	apply := func(st risk.UserRiskState) (risk.UserRiskState, error) {
		fn(&st)
		return st, nil
	}
	rec := userRisks.At(userID)
	err := rec.Update(ctx, k.kv, apply)
	if errors.Is(err, store.ErrNotFound) {
		first, _ := apply(risk.UserRiskState{})
		if err = rec.Create(ctx, k.kv, first, time.Time{}); errors.Is(err, store.ErrConflict) {
			return k.updateUserRisk(ctx, userID, fn)
		}
	}
	return err
}
