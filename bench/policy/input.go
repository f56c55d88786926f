package main

import (
	"slices"

	"github.com/stepgate/stepgate/internal/policy"
)

// regoInput is the request as OPA's input document. Values the engine
// derives internally are handed to OPA precomputed (nested groups
// expanded, event ages in nanoseconds, empty risk as "none"), which only
// helps OPA: the comparison measures policy evaluation, not plumbing.
func regoInput(r *policy.Request, groups map[string][]string) map[string]any {
	events := make([]any, 0, len(r.Events))
	for _, e := range r.Events {
		events = append(events, map[string]any{
			"method": e.Method, "uv": e.UserVerified,
			"age": r.Now.Sub(e.Time).Nanoseconds(), "time": e.Time.UnixNano(),
		})
	}
	changed := int64(0)
	if !r.PasswordChangedAt.IsZero() {
		changed = r.PasswordChangedAt.UnixNano()
	}
	ip := ""
	if r.IP.IsValid() {
		ip = r.IP.Unmap().String()
	}
	attrs := map[string]any{}
	for k, v := range r.Device.Attributes {
		attrs[k] = v
	}
	return map[string]any{
		"subject": map[string]any{
			"client": r.Subject.Client, "id": r.Subject.ID, "username": r.Subject.Username,
			"groups": anyList(expand(r.Subject.Groups, groups)), "roles": anyList(r.Subject.Roles),
		},
		"app": r.App, "auth_contexts": anyList(r.AuthContexts), "action": r.Action,
		"ip": ip, "country": r.Country, "platform": orDefault(r.Platform, policy.PlatformUnknown),
		"client_app": r.ClientApp,
		"device": map[string]any{
			"is_compliant": r.Device.IsCompliant, "trust_type": r.Device.TrustType, "attributes": attrs,
		},
		"sign_in_risk": orDefault(r.SignInRisk, policy.RiskNone), "user_risk": orDefault(r.UserRisk, policy.RiskNone),
		"events": events, "password_changed_at": changed,
		"accepted_terms": anyList(r.AcceptedTerms), "now": r.Now.UnixNano(),
	}
}

// expand adds every group the direct groups are nested in.
func expand(direct []string, parents map[string][]string) []string {
	out := slices.Clone(direct)
	for i := 0; i < len(out); i++ {
		for _, p := range parents[out[i]] {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
