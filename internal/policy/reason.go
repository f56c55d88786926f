package policy

// Reason is a stable code saying why a policy did or did not apply, or
// why a decision came out as it did. Logs, the What-If tool and the admin
// UI show it verbatim, and dashboards count by it, so a code is never
// renamed once released.
type Reason string

// Why a policy did not apply: the first condition, in evaluation order,
// that did not match.
const (
	ReasonPolicyDisabled           Reason = "policy-disabled"
	ReasonUserNotIncluded          Reason = "user-not-included"
	ReasonUserExcluded             Reason = "user-excluded"
	ReasonAppNotTargeted           Reason = "app-not-targeted"
	ReasonAppExcluded              Reason = "app-excluded"
	ReasonContextNotTargeted       Reason = "context-not-targeted"
	ReasonActionNotTargeted        Reason = "action-not-targeted"
	ReasonUserRiskBelowThreshold   Reason = "user-risk-below-threshold"
	ReasonUserRiskNotIncluded      Reason = "user-risk-not-included"
	ReasonSignInRiskBelowThreshold Reason = "sign-in-risk-below-threshold"
	ReasonSignInRiskNotIncluded    Reason = "sign-in-risk-not-included"
	ReasonPlatformNotIncluded      Reason = "platform-not-included"
	ReasonPlatformExcluded         Reason = "platform-excluded"
	ReasonLocationNotIncluded      Reason = "location-not-included"
	ReasonLocationExcluded         Reason = "location-excluded"
	ReasonClientAppNotIncluded     Reason = "client-app-not-included"
	ReasonDeviceFilterNotMatched   Reason = "device-filter-not-matched"
	ReasonDeviceFilterExcluded     Reason = "device-filter-excluded"
	ReasonConditionNotMatched      Reason = "condition-not-matched"
)

// Why an applied policy, or the decision as a whole, did not allow.
const (
	// ReasonBlocked: a block policy applied.
	ReasonBlocked Reason = "blocked-by-policy"
	// ReasonControlsNotSatisfied: the session lacks controls the user can
	// still provide (a challenge).
	ReasonControlsNotSatisfied Reason = "controls-not-satisfied"
	// ReasonApprovalUnavailable: the only way to satisfy the policy is an
	// approval, which Stepgate cannot grant until just-in-time access
	// lands, so the request is blocked rather than sent to a step-up page
	// the user could never complete.
	ReasonApprovalUnavailable Reason = "approval-unavailable"
)
