// Package reason is the one catalogue of the stable codes that say why a
// decision or an attempt came out as it did. The policy engine gives a
// code for each policy's result; the gateway, the OIDC provider and the
// sign-in and step-up pages give one for every decision and attempt they
// write to the sign-in log. Logs, the What-If tool and the console show
// a code verbatim, and dashboards count by it, so a code is never
// renamed or reused once released: testdata/codes.txt holds every
// released code and the test fails when one disappears.
//
// A code's sentence, for people reading a decision, may be reworded.
package reason

import "strings"

// Code is one stable reason code.
type Code string

// Why a policy did not apply: the first condition, in evaluation order,
// that did not match.
const (
	PolicyDisabled           Code = "policy-disabled"
	UserNotIncluded          Code = "user-not-included"
	UserExcluded             Code = "user-excluded"
	AppNotTargeted           Code = "app-not-targeted"
	AppExcluded              Code = "app-excluded"
	ContextNotTargeted       Code = "context-not-targeted"
	ActionNotTargeted        Code = "action-not-targeted"
	UserRiskBelowThreshold   Code = "user-risk-below-threshold"
	UserRiskNotIncluded      Code = "user-risk-not-included"
	SignInRiskBelowThreshold Code = "sign-in-risk-below-threshold"
	SignInRiskNotIncluded    Code = "sign-in-risk-not-included"
	PlatformNotIncluded      Code = "platform-not-included"
	PlatformExcluded         Code = "platform-excluded"
	LocationNotIncluded      Code = "location-not-included"
	LocationExcluded         Code = "location-excluded"
	ClientAppNotIncluded     Code = "client-app-not-included"
	DeviceFilterNotMatched   Code = "device-filter-not-matched"
	DeviceFilterExcluded     Code = "device-filter-excluded"
	ConditionNotMatched      Code = "condition-not-matched"
)

// Why a policy with a statements condition did not apply to a request
// (the database gateway's SQL statements).
const (
	NoStatement                 Code = "no-statement"
	StatementClassNotIncluded   Code = "statement-class-not-included"
	StatementCommandNotIncluded Code = "statement-command-not-included"
	StatementTableNotIncluded   Code = "statement-table-not-included"
	StatementLabelNotIncluded   Code = "statement-label-not-included"
)

// Why an applied policy, or the decision as a whole, did not allow.
const (
	// Blocked: a block policy applied.
	Blocked Code = "blocked-by-policy"
	// ControlsNotSatisfied: the session lacks controls the user can still
	// provide (a challenge).
	ControlsNotSatisfied Code = "controls-not-satisfied"
	// ApprovalUnavailable: the only way to satisfy the policy is an
	// approval, which cannot be granted, so the request is blocked rather
	// than sent to a step-up page the user could never complete.
	ApprovalUnavailable Code = "approval-unavailable"
)

// Why an enforcement point (the gateway, forward-auth, the OIDC
// provider, the console) asked for more or refused, beyond the policies.
const (
	// UnknownContext: a gateway rule asks for an authentication context
	// that is not declared; refused, so a typo never passes for a step-up.
	UnknownContext Code = "unknown-auth-context"
	// NoUsableMethod: the policies ask for a proof none of the user's
	// methods can give.
	NoUsableMethod Code = "no-usable-method"
	// MaxAgeExceeded: the policies are met, but the last proof is older
	// than the rule's or the application's max_age.
	MaxAgeExceeded Code = "max-age-exceeded"
	// SingleUseProofRequired: the rule is single use and the proof behind
	// the session already opened it once.
	SingleUseProofRequired Code = "single-use-proof-required"
	// NewSignInRequired: the application asked for a new sign-in
	// (prompt=login).
	NewSignInRequired Code = "new-sign-in-required"
	// PasswordChangeRequired: the policies ask for a password change.
	PasswordChangeRequired Code = "password-change-required"
	// NotSignedIn: the request has no valid session.
	NotSignedIn Code = "not-signed-in"
	// UnmetAuthenticationRequirements: the application asked for an acr
	// the user cannot reach (RFC 9470).
	UnmetAuthenticationRequirements Code = "unmet-authentication-requirements"
	// TokenLacksContext: an access token does not carry the
	// authentication context a route asks for.
	TokenLacksContext Code = "token-lacks-auth-context"
	// TokenAuthTooOld: the proof behind an access token is older than a
	// route's max_age.
	TokenAuthTooOld Code = "token-auth-time-too-old"
	// GrantWithoutProofs: a refresh of a grant made before the proofs,
	// address and platform of its sign-in were recorded, which the
	// policies cannot be judged on.
	GrantWithoutProofs Code = "grant-without-proofs"
)

// Why a sign-in, step-up or registration attempt failed.
const (
	InvalidCredentials Code = "invalid-credentials"
	AccountDisabled    Code = "account-disabled"
	TooManyFailures    Code = "too-many-failures"
	PasskeyRefused     Code = "passkey-refused"
	InvalidProof       Code = "invalid-proof"
	Replayed           Code = "replayed"
	DeniedOnDevice     Code = "denied-on-device"
	// DeviceDenied: the user refused a device authorization (RFC 8628)
	// on the device page.
	DeviceDenied Code = "device-denied-by-user"
	// MethodAdded and MethodRemoved may carry, after a colon, how the
	// change was allowed ("method-added:temporary-access-pass").
	MethodAdded            Code = "method-added"
	MethodRemoved          Code = "method-removed"
	RegistrationUnlocked   Code = "registration-unlocked"
	RegistrationNotAllowed Code = "registration-not-allowed"
	RemovalNotAllowed      Code = "removal-not-allowed"
	ChangeReportedNotMine  Code = "change-reported-not-mine"
)

// What happened to a just-in-time elevation (source elevation in the
// sign-in log): one code per transition.
const (
	ElevationRequested   Code = "elevation-requested"
	ElevationProven      Code = "elevation-proven"
	ElevationApproved    Code = "elevation-approved"
	ElevationDenied      Code = "elevation-denied"
	ElevationActivated   Code = "elevation-activated"
	ElevationExpired     Code = "elevation-expired"
	ElevationDeactivated Code = "elevation-deactivated"
)

// The database gateway's own refusals.
const (
	// StatementGuardrail: a built-in rule of the database gateway
	// refused the statement (COPY ... PROGRAM, a server file, UPDATE or
	// DELETE without WHERE where the database refuses it).
	StatementGuardrail Code = "statement-guardrail"
	// StepUpTimedOut: a statement held for a step-up got no proof within
	// the database's wait; StepUpCancelled: its client cancelled it
	// while it waited; StepUpRefused: the user denied it on the approval
	// page, or the proof given there did not meet its policies.
	StepUpTimedOut  Code = "step-up-timed-out"
	StepUpCancelled Code = "step-up-cancelled"
	StepUpRefused   Code = "step-up-refused"
)

// sentences say what each code means, for people reading a decision in
// the console.
var sentences = map[Code]string{
	PolicyDisabled:           "The policy is disabled.",
	UserNotIncluded:          "The user is in none of the policy's include lists.",
	UserExcluded:             "The user is in one of the policy's exclude lists.",
	AppNotTargeted:           "The policy does not target this app.",
	AppExcluded:              "The policy excludes this app.",
	ContextNotTargeted:       "The request asks for none of the authentication contexts the policy targets.",
	ActionNotTargeted:        "The policy does not target this user action.",
	UserRiskBelowThreshold:   "The user's risk is below every level the policy lists.",
	UserRiskNotIncluded:      "The user's risk is not one of the levels the policy lists.",
	SignInRiskBelowThreshold: "The sign-in risk is below every level the policy lists.",
	SignInRiskNotIncluded:    "The sign-in risk is not one of the levels the policy lists.",
	PlatformNotIncluded:      "The device platform is not one the policy includes.",
	PlatformExcluded:         "The policy excludes the device platform.",
	LocationNotIncluded:      "The request does not come from a location the policy includes.",
	LocationExcluded:         "The request comes from a location the policy excludes.",
	ClientAppNotIncluded:     "The client app type is not one the policy lists.",
	DeviceFilterNotMatched:   "The device does not match the policy's device filter (include mode).",
	DeviceFilterExcluded:     "The device matches the policy's device filter, which excludes it.",
	ConditionNotMatched:      "The policy's condition expression is false for this request.",

	NoStatement:                 "The policy has a statements condition and the request is not a SQL statement.",
	StatementClassNotIncluded:   "The SQL statement is less sensitive than every class the policy lists.",
	StatementCommandNotIncluded: "The SQL statement runs none of the commands the policy lists.",
	StatementTableNotIncluded:   "The SQL statement names none of the tables the policy lists.",
	StatementLabelNotIncluded:   "The SQL statement hits none of the labels the policy lists.",

	Blocked:              "The policy blocks access.",
	ControlsNotSatisfied: "The session lacks proofs the policy requires; the user can still give them.",
	ApprovalUnavailable:  "Only an approval could satisfy the policy, and approvals cannot be granted yet.",

	UnknownContext:                  "The route asks for an authentication context that is not declared, so it is refused until the configuration is fixed.",
	NoUsableMethod:                  "The policies ask for a proof none of the user's sign-in methods can give.",
	MaxAgeExceeded:                  "The policies are met, but the last proof is older than the maximum age asked for.",
	SingleUseProofRequired:          "The rule is single use, and the proof behind the session already opened it once.",
	NewSignInRequired:               "The application asked for a new sign-in.",
	PasswordChangeRequired:          "The policies ask for a password change.",
	NotSignedIn:                     "The request came without a valid session.",
	UnmetAuthenticationRequirements: "The application asked for an authentication level the user cannot reach.",
	TokenLacksContext:               "The access token does not carry the authentication context the route asks for.",
	TokenAuthTooOld:                 "The proof behind the access token is older than the route's maximum age.",
	GrantWithoutProofs:              "The grant was made before the proofs of its sign-in were recorded, so its refresh cannot be judged: the user signs in again.",

	InvalidCredentials: "The username or password was wrong.",
	AccountDisabled:    "The account is disabled.",
	TooManyFailures:    "Too many failed attempts: attempts are paused for a while.",
	PasskeyRefused:     "The passkey's answer was refused.",
	InvalidProof:       "The proof was wrong or expired.",
	Replayed:           "The proof had been used before.",
	DeniedOnDevice:     "The user denied the request on their device.",
	DeviceDenied:       "The user refused the device's request to sign in on their behalf.",
	MethodAdded:        "A sign-in method was added.",
	MethodRemoved:      "A sign-in method was removed.",

	RegistrationUnlocked:   "A proof opened the registration of a new sign-in method.",
	RegistrationNotAllowed: "The policies do not allow adding this sign-in method now.",
	RemovalNotAllowed:      "The policies do not allow removing this sign-in method now.",
	ChangeReportedNotMine:  "The user reported a change to their sign-in methods as not theirs.",
	ElevationRequested:     "The user asked to activate a role they are eligible for.",
	ElevationProven:        "The user gave the proof the role's activation asks for.",
	ElevationApproved:      "An approver approved the user's request to activate a role.",
	ElevationDenied:        "An approver denied the user's request to activate a role.",
	ElevationActivated:     "The role became active for the user, until the time shown.",
	ElevationExpired:       "The elevation ended at its time, or the request lapsed before a decision.",
	ElevationDeactivated:   "The elevation was ended early: by its holder, an administrator, or because the user is no longer eligible.",
	StatementGuardrail:     "A built-in rule of the database gateway refused the statement, whatever the proofs.",
	StepUpTimedOut:         "The statement waited for a step-up and no proof came in time.",
	StepUpCancelled:        "The client cancelled the statement while it waited for a step-up.",
	StepUpRefused:          "The statement waited for a step-up, and the user denied it or the proof did not meet its policies.",
}

// Sentence describes the code for people: "The policy does not target
// this app." An unknown code (from a newer version's log entry) is
// returned as it is.
func (c Code) Sentence() string {
	base, _, _ := strings.Cut(string(c), ":")
	if s, ok := sentences[Code(base)]; ok {
		return s
	}
	return string(c)
}

// Known reports whether c is in the catalogue, with or without a
// qualifier after a colon.
func (c Code) Known() bool {
	base, _, _ := strings.Cut(string(c), ":")
	_, ok := sentences[Code(base)]
	return ok
}

// With qualifies c: "method-added" with "temporary-access-pass" is
// "method-added:temporary-access-pass".
func (c Code) With(qualifier string) Code {
	return c + ":" + Code(qualifier)
}

// All lists every code in the catalogue, in no particular order.
func All() []Code {
	out := make([]Code, 0, len(sentences))
	for c := range sentences {
		out = append(out, c)
	}
	return out
}
