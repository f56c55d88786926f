package app

import (
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/web"
)

// rolesPages gives the account pages the elevation service: the roles
// page (/account/roles), where users ask for their eligible roles, and
// its step-up source, so the step-up page says what an activation's
// proof is for and offers only the methods that meet it.
func (a *App) rolesPages(pages *web.Pages) {
	pages.Elevation = a.Elevation
	// Activation is decided for the app elevate.App: the roles that
	// count there are the user's standing ones and what is scoped to it.
	pages.Access = func(r *http.Request, u store.User, s *store.Session, now time.Time) *policy.Request {
		return a.Access.Request(r, u, s, elevate.App, now)
	}
	pages.StepUps = append(pages.StepUps, pages.ElevationStepUps())
}
