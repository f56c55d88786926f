package access_test

import (
	"context"
	"errors"
	"slices"
	"testing"

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

// decides is an Evaluator with a fixed answer that records the action it
// was asked about.
type decides struct {
	d      policy.Decision
	action *string
}

func (e decides) Evaluate(req *policy.Request, _ policy.EvaluateOptions) policy.Decision {
	*e.action = req.Action
	return e.d
}

func TestRegisterCheck(t *testing.T) {
	mfa := []policy.Requirement{{AnyOf: []policy.Need{{Kind: policy.KindStrength, Strength: "mfa",
		Options: [][]string{{"password", "totp"}, {"webauthn"}}}}}}
	challenge := policy.Decision{Outcome: policy.OutcomeChallenge, Missing: mfa}
	listFails := func() ([]string, error) { return nil, errors.New("store down") }
	for _, tc := range []struct {
		name        string
		d           policy.Decision
		available   func() ([]string, error)
		wantMethods []string
		wantBlocked bool
		wantErr     bool
	}{
		{"ok/allowed", policy.Decision{Outcome: policy.OutcomeAllow}, listFails, nil, false, false},
		{"ok/challenge-offers-methods", challenge, func() ([]string, error) { return []string{"totp", "password"}, nil }, []string{"totp", "password"}, false, false},
		{"fail/blocked", policy.Decision{Outcome: policy.OutcomeBlock}, listFails, nil, true, false},
		// A password-only user cannot meet mfa: blocked, never offered
		// the password alone.
		{"fail/no-method-meets-it", challenge, func() ([]string, error) { return []string{"password"}, nil }, nil, true, false},
		{"fail/methods-unlisted-blocks", challenge, listFails, nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var action string
			methods, blocked, err := access.RegisterCheck(&policy.Request{}, decides{d: tc.d, action: &action}, tc.available)
			if action != policy.ActionRegisterSecurityInfo {
				t.Errorf("evaluated action %q, want %q", action, policy.ActionRegisterSecurityInfo)
			}
			if !slices.Equal(methods, tc.wantMethods) || blocked != tc.wantBlocked || (err != nil) != tc.wantErr {
				t.Errorf("got %v blocked=%v err=%v, want %v blocked=%v err=%v", methods, blocked, err, tc.wantMethods, tc.wantBlocked, tc.wantErr)
			}
		})
	}
}
