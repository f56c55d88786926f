package policy

import "github.com/stepgate/stepgate/internal/reason"

// Reason is a stable code saying why a policy did or did not apply, or
// why a decision came out as it did. The codes and their sentences live
// in one catalogue, package reason, shared with every enforcement point;
// the names here are the policy engine's own.
type Reason = reason.Code

// Why a policy did not apply: the first condition, in evaluation order,
// that did not match.
const (
	ReasonPolicyDisabled           = reason.PolicyDisabled
	ReasonUserNotIncluded          = reason.UserNotIncluded
	ReasonUserExcluded             = reason.UserExcluded
	ReasonAppNotTargeted           = reason.AppNotTargeted
	ReasonAppExcluded              = reason.AppExcluded
	ReasonContextNotTargeted       = reason.ContextNotTargeted
	ReasonActionNotTargeted        = reason.ActionNotTargeted
	ReasonUserRiskBelowThreshold   = reason.UserRiskBelowThreshold
	ReasonUserRiskNotIncluded      = reason.UserRiskNotIncluded
	ReasonSignInRiskBelowThreshold = reason.SignInRiskBelowThreshold
	ReasonSignInRiskNotIncluded    = reason.SignInRiskNotIncluded
	ReasonPlatformNotIncluded      = reason.PlatformNotIncluded
	ReasonPlatformExcluded         = reason.PlatformExcluded
	ReasonLocationNotIncluded      = reason.LocationNotIncluded
	ReasonLocationExcluded         = reason.LocationExcluded
	ReasonClientAppNotIncluded     = reason.ClientAppNotIncluded
	ReasonDeviceFilterNotMatched   = reason.DeviceFilterNotMatched
	ReasonDeviceFilterExcluded     = reason.DeviceFilterExcluded
	ReasonConditionNotMatched      = reason.ConditionNotMatched
)

// Why a policy with a statements condition did not apply.
const (
	ReasonNoStatement                 = reason.NoStatement
	ReasonStatementClassNotIncluded   = reason.StatementClassNotIncluded
	ReasonStatementCommandNotIncluded = reason.StatementCommandNotIncluded
	ReasonStatementTableNotIncluded   = reason.StatementTableNotIncluded
	ReasonStatementLabelNotIncluded   = reason.StatementLabelNotIncluded
)

// Why an applied policy, or the decision as a whole, did not allow.
const (
	// ReasonBlocked: a block policy applied.
	ReasonBlocked = reason.Blocked
	// ReasonControlsNotSatisfied: the session lacks controls the user can
	// still provide (a challenge).
	ReasonControlsNotSatisfied = reason.ControlsNotSatisfied
	// ReasonApprovalUnavailable: the only way to satisfy the policy is an
	// approval, which Stepgate cannot grant until just-in-time access
	// lands, so the request is blocked rather than sent to a step-up page
	// the user could never complete.
	ReasonApprovalUnavailable = reason.ApprovalUnavailable
)
