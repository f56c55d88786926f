package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// A refresh is judged by the policies as they are now, on the proofs the
// grant was made with: a refresh token is not a decision that lasts its
// whole life. The attack: keep using a refresh token after the
// administrator blocked the app, or after a context's policy was
// tightened, without ever proving anything again.
func TestAttackRefreshOutlivesThePolicies(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	plain := s.mustExchange(t, s.code(t, b, nil), "")
	c1 := s.mustExchange(t, s.code(t, b, url.Values{"acr_values": {"c1"}}), "")
	for what, rt := range map[string]string{"plain": plain.RefreshToken, "c1": c1.RefreshToken} {
		st, out := s.refresh(t, rt)
		if st != 200 {
			t.Fatalf("refresh of the %s grant under the policies it was made under: %d %s", what, st, out.ErrorDescription)
		}
		if what == "plain" {
			plain = out
		} else {
			c1 = out
		}
	}

	// c1 now asks for MFA: the password behind the c1 grant no longer
	// meets it, while the plain grant, which carries no context, still
	// refreshes.
	s.usePolicies(t, `policies:
  - name: c1-now-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1]}
    grant: {controls: [mfa]}
`)
	if st, out := s.refresh(t, c1.RefreshToken); st != 400 || out.Error != "invalid_grant" || !strings.Contains(out.ErrorDescription, string(reason.ControlsNotSatisfied)) {
		t.Errorf("fail/context-tightened: %d %s %q, want 400 invalid_grant for controls-not-satisfied", st, out.Error, out.ErrorDescription)
	}
	st, out := s.refresh(t, plain.RefreshToken)
	if st != 200 {
		t.Fatalf("ok/no-context: %d %s", st, out.ErrorDescription)
	}

	// The app is now blocked for everyone.
	s.usePolicies(t, `policies:
  - name: block-webapp
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [`+rpClientID+`]}}
    grant: block
`)
	if st, refused := s.refresh(t, out.RefreshToken); st != 400 || refused.Error != "invalid_grant" {
		t.Errorf("fail/app-blocked: %d %s, want 400 invalid_grant", st, refused.Error)
	}

	// Each refusal is in the sign-in log with its reason, and the
	// policies' results explain it.
	if err := s.app.SignIns.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.app.Store.ListSignIns(context.Background(), store.SignInQuery{UserID: s.user.ID})
	if err != nil {
		t.Fatal(err)
	}
	found := map[reason.Code]bool{}
	for _, row := range rows {
		e, _ := audit.Decode(row)
		if e.Source == "oidc" && e.App == rpClientID && e.Decision != "allow" && len(e.Policies) > 0 {
			found[e.Reason] = true
		}
	}
	if !found[reason.ControlsNotSatisfied] || !found[reason.Blocked] {
		t.Errorf("refused refreshes in the sign-in log: %v, want controls-not-satisfied and blocked-by-policy", found)
	}
}
