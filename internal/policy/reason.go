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

// reasonSentences say what each code means, for people reading a
// decision in the admin console. The code itself stays the stable
// identifier; the sentence may be reworded.
var reasonSentences = map[Reason]string{
	ReasonPolicyDisabled:           "The policy is disabled.",
	ReasonUserNotIncluded:          "The user is in none of the policy's include lists.",
	ReasonUserExcluded:             "The user is in one of the policy's exclude lists.",
	ReasonAppNotTargeted:           "The policy does not target this app.",
	ReasonAppExcluded:              "The policy excludes this app.",
	ReasonContextNotTargeted:       "The request asks for none of the authentication contexts the policy targets.",
	ReasonActionNotTargeted:        "The policy does not target this user action.",
	ReasonUserRiskBelowThreshold:   "The user's risk is below every level the policy lists.",
	ReasonUserRiskNotIncluded:      "The user's risk is not one of the levels the policy lists.",
	ReasonSignInRiskBelowThreshold: "The sign-in risk is below every level the policy lists.",
	ReasonSignInRiskNotIncluded:    "The sign-in risk is not one of the levels the policy lists.",
	ReasonPlatformNotIncluded:      "The device platform is not one the policy includes.",
	ReasonPlatformExcluded:         "The policy excludes the device platform.",
	ReasonLocationNotIncluded:      "The request does not come from a location the policy includes.",
	ReasonLocationExcluded:         "The request comes from a location the policy excludes.",
	ReasonClientAppNotIncluded:     "The client app type is not one the policy lists.",
	ReasonDeviceFilterNotMatched:   "The device does not match the policy's device filter (include mode).",
	ReasonDeviceFilterExcluded:     "The device matches the policy's device filter, which excludes it.",
	ReasonConditionNotMatched:      "The policy's condition expression is false for this request.",
	ReasonBlocked:                  "The policy blocks access.",
	ReasonControlsNotSatisfied:     "The session lacks proofs the policy requires; the user can still give them.",
	ReasonApprovalUnavailable:      "Only an approval could satisfy the policy, and approvals cannot be granted yet.",
}

// Sentence describes the code for people: "The policy does not target
// this app." An unknown code (from a newer version's log entry) is
// returned as it is.
func (r Reason) Sentence() string {
	if s, ok := reasonSentences[r]; ok {
		return s
	}
	return string(r)
}
