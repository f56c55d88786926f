package access

import (
	"context"
	"fmt"
	"slices"

	"github.com/stepgate/stepgate/internal/authn/recovery"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// CredentialLister lists a user's registered sign-in methods.
type CredentialLister interface {
	ListCredentials(ctx context.Context, userID string) ([]store.Credential, error)
}

// AvailableMethods are the methods u has that a step-up can offer, in the
// prompt order of names (the deployment's methods), password last.
func AvailableMethods(ctx context.Context, creds CredentialLister, names []string, u store.User) ([]string, error) {
	have, err := creds.ListCredentials(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	var out []string
	for _, name := range names {
		if name == recovery.Name {
			// Recovery codes recover; they meet no policy's grant, so
			// no step-up offers them.
			continue
		}
		if slices.ContainsFunc(have, func(c store.Credential) bool { return c.Type == name }) {
			out = append(out, name)
		}
	}
	if u.PasswordHash != "" {
		out = append(out, strength.Password)
	}
	return out, nil
}

// RegisterCheck applies the register-security-info policies of snap to
// req (the user adding or removing a sign-in method): no methods and not
// blocked when the user may register now; the methods to step up with
// when a proof is missing; blocked when the policies block it, ask for a
// password change (which the security page cannot take), or none of the
// user's methods (listed by available, asked only then) can satisfy them.
func RegisterCheck(snap *policy.Snapshot, req *policy.Request, available MethodSource) (methods []string, blocked bool, err error) {
	req.Action = policy.ActionRegisterSecurityInfo
	v, err := Decide(Ask{Snapshot: snap, Request: req}, available)
	switch {
	case err != nil:
		return nil, true, err
	case v.Outcome == policy.OutcomeAllow:
		return nil, false, nil
	case v.Outcome == policy.OutcomeBlock, slices.ContainsFunc(v.Missing, policy.Requirement.IsPasswordChange):
		return nil, true, nil
	}
	return v.Methods, false, nil
}
