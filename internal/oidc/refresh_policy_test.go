package oidc

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// refreshPolicies: a context whose policy asks for MFA within the hour,
// a sanctioned address range that is blocked everywhere, and a block of
// high-risk sign-ins, and, for some users, MFA outside the office and a
// blocked platform.
const refreshPolicies = `auth_contexts:
  - {id: c4, name: Monthly reports}
named_locations:
  - name: sanctioned
    ip_ranges: [198.51.100.0/24]
  - name: office
    trusted: true
    ip_ranges: [10.0.0.0/8]
policies:
  - name: c4-hourly-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c4]}
    grant: {controls: [mfa]}
    session: {sign_in_frequency: 1h}
  - name: block-sanctioned
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {locations: {include: [sanctioned]}}
    grant: block
  - name: block-high-sign-in-risk
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {sign_in_risk: [high]}
    grant: block
  - name: block-high-user-risk
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {user_risk: [high]}
    grant: block
  - name: block-android
    state: enabled
    users: {include: {groups: [handsets]}}
    target: {apps: {include: [all]}}
    conditions: {platforms: {include: [android]}}
    grant: block
  - name: mfa-outside-the-office
    state: enabled
    users: {include: {groups: [roaming]}}
    target: {apps: {include: [all]}}
    conditions: {locations: {include: [all], exclude: [all-trusted]}}
    grant: {controls: [mfa]}
`

// TestAttackRefreshJudgedOnTheGrant performs, against the refresh's
// decision, the attacks a refresh token invites: keeping a context past
// its sign-in frequency on proofs that never get younger, choosing the
// address a refresh is judged from (a forged X-Forwarded-For, or a
// confidential client's request from elsewhere), a context that is no
// longer declared, and a grant with no recorded proofs (made before they
// were recorded), which is refused whatever the policies. Each refusal is in the sign-in log with its code.
func TestAttackRefreshJudgedOnTheGrant(t *testing.T) {
	tp := newTestProvider(t)
	doc, probs := policy.Parse("refresh.yaml", []byte(refreshPolicies))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	snap, probs := policy.Compile(nil, doc)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	tp.Policies = policy.NewEngine(snap)
	userRisk := ""
	b := &access.Builder{ClientIP: httpx.ClientIP{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}},
		UserRisk: func(context.Context, string) string { return userRisk }}
	tp.Access = b.Request
	var logged []audit.SignIn
	tp.SignIns = func(_ context.Context, e audit.SignIn) error {
		logged = append(logged, e)
		return nil
	}
	now := tp.clock.Now()
	pwd := func(ago time.Duration) store.AuthEvent {
		return store.AuthEvent{Method: "password", Time: now.Add(-ago), AMR: []string{"pwd"}}
	}
	totp := func(ago time.Duration) store.AuthEvent {
		return store.AuthEvent{Method: "totp", Time: now.Add(-ago), AMR: []string{"otp"}}
	}
	const (
		good       = "203.0.113.7"
		sanctioned = "198.51.100.7"
		office     = "10.1.2.3"
		proxy      = "192.0.2.1" // the one trusted proxy
		android    = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
	)
	confidential := tp.client(t)
	public := &Client{ID: testClientID, Public: true}
	for _, tc := range []struct {
		name   string
		client *Client
		proofs []store.AuthEvent
		acrs   []string
		// peer and forwarded are the refresh request's TCP peer and
		// X-Forwarded-For.
		peer, forwarded string
		// platform is the one the user signed in on; ua the refresh
		// request's User-Agent.
		platform, ua string
		groups       []string
		// userRisk is the user's risk at the refresh.
		userRisk string
		want     reason.Code // "" for a refresh let through
	}{
		{name: "ok/context-within-its-frequency", client: confidential, proofs: []store.AuthEvent{pwd(50 * time.Minute), totp(50 * time.Minute)},
			acrs: []string{"c4"}, peer: good},
		{name: "fail/context-past-its-frequency", client: confidential, proofs: []store.AuthEvent{pwd(61 * time.Minute), totp(61 * time.Minute)},
			acrs: []string{"c4"}, peer: good, want: reason.ControlsNotSatisfied},
		// A password typed since does not renew the MFA proof the
		// context rests on: the grant's proofs are those it was made
		// with, and a refresh records none.
		{name: "fail/context-past-its-frequency-fresh-password", client: confidential,
			proofs: []store.AuthEvent{pwd(2 * time.Hour), totp(2 * time.Hour), pwd(time.Minute)},
			acrs:   []string{"c4"}, peer: good, want: reason.ControlsNotSatisfied},
		{name: "fail/undeclared-context", client: confidential, proofs: []store.AuthEvent{pwd(time.Minute), totp(time.Minute)},
			acrs: []string{"c9"}, peer: good, want: reason.UnknownContext},
		{name: "fail/high-risk-sign-in", client: confidential,
			proofs: []store.AuthEvent{{Method: "password", Time: now.Add(-time.Minute), AMR: []string{"pwd"}, Risk: "high"}},
			peer:   good, want: reason.Blocked},
		// A grant made before its proofs, address and platform were
		// recorded cannot be judged on them: a block on a country added
		// since would never see it.
		// The user as they are now: flagged high risk since the grant.
		{name: "fail/user-now-high-risk", client: confidential, proofs: []store.AuthEvent{pwd(time.Minute), totp(time.Minute)},
			peer: good, userRisk: "high", want: reason.Blocked},
		{name: "fail/legacy-grant-without-proofs", client: confidential, acrs: []string{"c4"}, peer: good, want: reason.GrantWithoutProofs},
		{name: "fail/legacy-grant-from-a-country-blocked-since", client: confidential, peer: sanctioned, want: reason.GrantWithoutProofs},
		{name: "fail/legacy-grant-public", client: public, peer: good, want: reason.GrantWithoutProofs},
		// A public client refreshes from the user's device: the
		// request's address counts, and a forwarded address only from
		// a trusted proxy.
		{name: "fail/public-from-sanctioned", client: public, proofs: []store.AuthEvent{pwd(time.Minute)}, peer: sanctioned,
			want: reason.Blocked},
		{name: "fail/public-forged-forwarded-for", client: public, proofs: []store.AuthEvent{pwd(time.Minute)},
			peer: sanctioned, forwarded: good, want: reason.Blocked},
		{name: "fail/public-forged-forwarded-for-office", client: public, proofs: []store.AuthEvent{pwd(time.Minute)}, groups: []string{"roaming"},
			peer: good, forwarded: office, want: reason.ControlsNotSatisfied},
		{name: "fail/public-through-the-proxy-from-sanctioned", client: public, proofs: []store.AuthEvent{pwd(time.Minute)},
			peer: proxy, forwarded: sanctioned, want: reason.Blocked},
		// A confidential client refreshes from its own server: its
		// address counts, as any request's does, forwarded only by a
		// trusted proxy; the address the user signed in from does not
		// carry the refresh.
		{name: "fail/confidential-from-sanctioned", client: confidential, proofs: []store.AuthEvent{pwd(time.Minute)},
			peer: sanctioned, want: reason.Blocked},
		{name: "fail/confidential-forged-forwarded-for", client: confidential, proofs: []store.AuthEvent{pwd(time.Minute)},
			peer: sanctioned, forwarded: good, want: reason.Blocked},
		{name: "fail/confidential-office-forged", client: confidential, proofs: []store.AuthEvent{pwd(time.Minute)},
			groups: []string{"roaming"}, peer: good, forwarded: office, want: reason.ControlsNotSatisfied},
		{name: "ok/confidential-server-at-the-office", client: confidential, proofs: []store.AuthEvent{pwd(time.Minute)},
			groups: []string{"roaming"}, peer: proxy, forwarded: office},
		// The platform: the device's for a public client, the sign-in's
		// for a confidential one, whatever its server's User-Agent says.
		{name: "fail/public-on-a-blocked-platform", client: public, proofs: []store.AuthEvent{pwd(time.Minute)}, groups: []string{"handsets"},
			peer: good, platform: policy.PlatformWindows, ua: android, want: reason.Blocked},
		{name: "fail/confidential-signed-in-on-a-blocked-platform", client: confidential, proofs: []store.AuthEvent{pwd(time.Minute)},
			groups: []string{"handsets"}, peer: good, platform: policy.PlatformAndroid, ua: "Go-http-client/1.1", want: reason.Blocked},
		{name: "ok/confidential-server-claims-a-blocked-platform", client: confidential, proofs: []store.AuthEvent{pwd(time.Minute)},
			groups: []string{"handsets"}, peer: good, platform: policy.PlatformWindows, ua: android},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logged, userRisk = nil, tc.userRisk
			u := tp.user
			u.Groups = tc.groups
			a := authState{UserID: u.ID, ACR: "single-factor", ACRs: tc.acrs, Proofs: tc.proofs, Platform: tc.platform}
			r := httptest.NewRequest("POST", "/oauth2/token", nil)
			r.Header.Set("User-Agent", tc.ua)
			r.RemoteAddr = tc.peer + ":40000"
			if tc.forwarded != "" {
				r.Header.Set("X-Forwarded-For", tc.forwarded)
			}
			err := tp.refreshAllowed(r, tc.client, u, a)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refresh refused: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != "invalid_grant" {
				t.Fatalf("refresh: %v, want invalid_grant for %s", err, tc.want)
			}
			if len(logged) != 1 || logged[0].Reason != tc.want || logged[0].Decision == "allow" {
				t.Fatalf("sign-in log: %+v, want one refusal for %s", logged, tc.want)
			}
		})
	}
}
