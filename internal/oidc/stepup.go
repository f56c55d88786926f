package oidc

import (
	"net/http"
	"net/url"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// StepUpFor describes the step-up that returnTo, the address that
// resumes an authorization flow, is for: the client's name, the
// authentication contexts its acr_values and claims ask for, and what
// the session still lacks, decided again from the sealed flow and the
// browser's session. The address only names the flow. ok is false for
// any other address, or a flow that has ended.
func (p *Provider) StepUpFor(r *http.Request, _ store.User, _ store.Session, returnTo string) (access.StepUp, bool) {
	back, err := url.Parse(returnTo)
	if err != nil || back.Path != pathResume {
		return access.StepUp{}, false
	}
	f, err := p.openFlow(back.Query().Get("flow"))
	if err != nil {
		return access.StepUp{}, false
	}
	out := access.StepUp{App: f.ClientID}
	if c, err := p.Clients.Get(r.Context(), f.ClientID); err == nil && c.Name != "" {
		out.App = c.Name
	}
	snap := p.snapshotFor(f.ClientID)
	ids := contextsOf(snap, allValues(acrRequirements(f)))
	for _, c := range snap.AuthContexts() {
		for _, want := range ids {
			if c.ID == want {
				out.Contexts = append(out.Contexts, c)
			}
		}
	}
	// The decision is the one the flow makes when the user comes back;
	// its log entry is not written (nothing was decided for real).
	v, err := p.decide(r.Context(), r, f, &audit.SignIn{})
	switch {
	case err != nil:
		return access.StepUp{}, false
	case v.err != nil && len(v.missing) == 0:
		out.Blocked = true
	case v.err != nil, v.kind == verdictStepUp:
		// A step-up, or one no method of the user's can give: the page
		// says what is missing either way.
		out.Missing, out.Reask = v.missing, v.reask
		if v.reask == access.ReaskMaxAge {
			out.MaxAge = time.Duration(f.MaxAge) * time.Second
		}
	}
	return out, true
}

// reaskKind says which parameter made the flow a re-ask.
func reaskKind(f *flow) access.Reask {
	if f.wants("login") {
		return access.ReaskLogin
	}
	return access.ReaskMaxAge
}
