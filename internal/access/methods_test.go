package access_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn/recovery"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// credentials is a user's registered methods, by type.
type credentials struct {
	types []string
	err   error
}

func (c credentials) ListCredentials(context.Context, string) ([]store.Credential, error) {
	out := make([]store.Credential, len(c.types))
	for i, t := range c.types {
		out[i] = store.Credential{Type: t}
	}
	return out, c.err
}

func TestAvailableMethods(t *testing.T) {
	order := []string{"webauthn", "push", "totp", recovery.Name}
	withPassword := store.User{ID: "u1", PasswordHash: "$argon2id$..."}
	for _, tc := range []struct {
		name  string
		has   []string
		user  store.User
		want  []string
		fails bool
	}{
		{"ok/prompt-order-password-last", []string{"totp", "webauthn"}, withPassword, []string{"webauthn", "totp", strength.Password}, false},
		// Recovery codes only recover: offering them on a step-up would
		// let a code meet a grant.
		{"ok/recovery-never-offered", []string{recovery.Name, "totp"}, withPassword, []string{"totp", strength.Password}, false},
		{"ok/passwordless-user", []string{"webauthn"}, store.User{ID: "u2"}, []string{"webauthn"}, false},
		{"ok/unknown-type-ignored", []string{"sms-from-an-old-version"}, withPassword, []string{strength.Password}, false},
		{"fail/store-error", nil, withPassword, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds := credentials{types: tc.has}
			if tc.fails {
				creds.err = errors.New("disk on fire")
			}
			got, err := access.AvailableMethods(context.Background(), creds, order, tc.user)
			if tc.fails != (err != nil) {
				t.Fatalf("err = %v, want failure %v", err, tc.fails)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("methods %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRegisterCheck(t *testing.T) {
	snap := decideSnapshot(t)
	now := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	listFails := func() ([]string, error) { return nil, errors.New("store down") }
	have := func(m ...string) access.MethodSource { return func() ([]string, error) { return m, nil } }
	pwd := strength.Event{Method: "password", Time: now.Add(-time.Hour), AMR: []string{"pwd"}}
	for _, tc := range []struct {
		name        string
		risk        string
		group       string
		client      string
		available   access.MethodSource
		wantMethods []string
		wantBlocked bool
		wantErr     bool
	}{
		{name: "ok/allowed", available: listFails},
		{name: "ok/challenge-offers-methods", group: "staff", available: have("totp", "password"), wantMethods: []string{"totp"}},
		{name: "fail/blocked", client: policy.ClientLegacy, available: listFails, wantBlocked: true},
		// A password-only user cannot meet mfa: blocked, never offered
		// the password alone.
		{name: "fail/no-method-meets-it", group: "staff", available: have("password"), wantBlocked: true},
		{name: "fail/methods-unlisted-blocks", group: "staff", available: listFails, wantBlocked: true, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &policy.Request{Subject: policy.Subject{ID: "u1", Groups: []string{tc.group}}, App: "bank", Events: []strength.Event{pwd},
				UserRisk: tc.risk, ClientApp: cmp.Or(tc.client, policy.ClientBrowser), Now: now}
			methods, blocked, err := access.RegisterCheck(snap, req, tc.available)
			if req.Action != policy.ActionRegisterSecurityInfo {
				t.Errorf("evaluated action %q, want %q", req.Action, policy.ActionRegisterSecurityInfo)
			}
			if !slices.Equal(methods, tc.wantMethods) || blocked != tc.wantBlocked || (err != nil) != tc.wantErr {
				t.Errorf("got %v blocked=%v err=%v, want %v blocked=%v err=%v", methods, blocked, err, tc.wantMethods, tc.wantBlocked, tc.wantErr)
			}
		})
	}
}

// A policy that asks for a password change before a method is added
// blocks: the security page cannot take the change, and offering the
// other proofs alone would let the method in without it.
func TestRegisterCheckPasswordChangeBlocks(t *testing.T) {
	snap := decideSnapshot(t)
	now := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	req := &policy.Request{Subject: policy.Subject{ID: "u1"}, App: "bank", UserRisk: "high", ClientApp: policy.ClientBrowser, Now: now,
		Events: []strength.Event{{Method: "password", Time: now.Add(-time.Hour), AMR: []string{"pwd"}}, {Method: "totp", Time: now.Add(-time.Hour), AMR: []string{"otp"}}}}
	methods, blocked, err := access.RegisterCheck(snap, req, func() ([]string, error) { return []string{"totp", "password"}, nil })
	if err != nil || !blocked || methods != nil {
		t.Fatalf("got %v blocked=%v err=%v, want blocked", methods, blocked, err)
	}
}
