package app

import (
	"context"
	"maps"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/riskservice"
)

// SourceDetection is the sign-in log's source of a risk detection another
// system reported through the API.
const SourceDetection = "detection"

// logDetection writes a reported detection to the sign-in log through
// the one writer, with who reported it, so administrators see it beside
// the decisions it changes.
func (a *App) logDetection(ctx context.Context, username string, d riskservice.Reported) error {
	evidence := maps.Clone(d.Evidence)
	if evidence == nil {
		evidence = map[string]string{}
	}
	evidence["source"] = d.Source
	evidence["id"] = d.ID
	evidence["applies_to"] = d.AppliesTo
	evidence["expires_at"] = d.ExpiresAt.UTC().Format(time.RFC3339)
	if d.SessionID != "" {
		evidence["session_id"] = d.SessionID
	}
	if d.TokenID != "" {
		evidence["token_id"] = d.TokenID
	}
	if d.Revoke {
		evidence["revoke"] = "true"
	}
	// The audit trail names who changed the user's risk, as it does for
	// an administrator's own decision.
	a.recordAudit(ctx, d.Source, "user.risk-detection", "user:"+username)
	return a.writeSignIn(ctx, audit.SignIn{
		Time: d.ReceivedAt, Source: SourceDetection, UserID: d.UserID, Username: username,
		ClientApp: d.Source, Decision: "reported", RiskLevel: d.Level.String(),
		Risk: []audit.Detection{{Type: d.Type, Level: d.Level.String(), Reason: d.Reason, Evidence: evidence}},
	})
}
