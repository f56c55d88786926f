package authn

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/store"
)

// Errors every method uses, so pages can answer alike.
var (
	// ErrInvalid means the answer was wrong: a bad code, a signature that
	// does not verify. Pages say "incorrect" and count a failure.
	ErrInvalid = errkind.New(errkind.Unauthenticated, "the answer is not valid")
	// ErrReplay means a single-use answer was used again.
	ErrReplay = errkind.New(errkind.Unauthenticated, "the answer was already used")
	// ErrThrottled means too many attempts; the user must wait.
	ErrThrottled = errkind.New(errkind.Throttled, "too many attempts; wait before trying again")
	// ErrNotEnrolled means the user has no credential of this method.
	ErrNotEnrolled = errors.New("no credential of this method is registered")
	// ErrPending means the answer is not there yet (a push approval).
	ErrPending = errkind.New(errkind.Conflict, "waiting for an answer")
	// ErrDenied means the user refused (a push denied on the device).
	ErrDenied = errkind.New(errkind.Unauthenticated, "the request was denied")
	// ErrNotAllowed means the answer was genuine but the deployment's
	// settings refuse what it registers (an authenticator model not on
	// the allow-list). Pages show the wrapping error's own text, which
	// names the fix, and count no failure.
	ErrNotAllowed = errkind.New(errkind.Forbidden, "not allowed by this deployment's settings")
	// ErrDisabledAccount means the proof was right but its account is
	// disabled. Methods report it only after a correct answer, so it
	// tells nothing to someone who cannot sign in anyway.
	ErrDisabledAccount = errors.New("the account is disabled")
	// ErrNextStep means FinishEnroll accepted the answer and the same
	// ceremony goes on: the page shows Enrolled.Show (it keeps the
	// ceremony id and state) and sends the next answer to FinishEnroll
	// again. A one-time code to a phone number asks for the number first,
	// then for the code sent to it.
	ErrNextStep = errors.New("the answer was accepted; the next step follows")
)

// InputError is an answer not in the form the step asks for, such as a
// phone number without its country code: nothing secret was compared.
// It counts as ErrInvalid for callers that know no better; pages that
// know it ask for the same step again with Fix, and count no failure.
type InputError struct {
	// Fix tells the user what to enter instead, as a sentence.
	Fix string
}

func (e *InputError) Error() string { return ErrInvalid.Error() + ": " + e.Fix }

// Kind makes an InputError bad input, not a wrong answer: nothing
// secret was compared.
func (e *InputError) Kind() errkind.Kind { return errkind.Invalid }

// Is makes an InputError match ErrInvalid.
func (e *InputError) Is(target error) bool { return target == ErrInvalid }

// Proof is a completed verification; it becomes one authentication event
// of the session.
type Proof struct {
	Method            string
	AMR               []string
	PhishingResistant bool
	CredentialID      string
	// AAGUID names the authenticator model of a passkey proof, for
	// strengths that accept only some models.
	AAGUID string
}

// Event turns the proof into a session authentication event at now.
func (p Proof) Event(now time.Time) store.AuthEvent {
	return store.AuthEvent{
		Method: p.Method, Time: now.UTC(), AMR: slices.Clone(p.AMR),
		PhishingResistant: p.PhishingResistant, CredentialID: p.CredentialID, AAGUID: p.AAGUID,
	}
}

// Challenge is one step of a ceremony.
type Challenge struct {
	// State stays on the server until the answer arrives; the browser
	// never sees it.
	State []byte
	// Show is what the page renders: a QR code, WebAuthn options, a
	// number to match. Its keys are the method's own.
	Show map[string]any
}

// Response is what the browser answered.
type Response struct {
	// Code is a typed code (TOTP, one-time code, recovery code) or a
	// chosen option.
	Code string
	// Data is a JSON answer (WebAuthn).
	Data []byte
}

// Enrolled is the result of finishing an enrollment.
type Enrolled struct {
	Credential store.Credential
	// Show is shown once after enrollment (recovery codes).
	Show map[string]any
}

// Method is one way to prove identity.
type Method interface {
	// Name is the method's name in strengths and AMR mapping ("totp").
	Name() string
	// Label names the method for people ("Authenticator app").
	Label() string
	// BeginEnroll starts registering a new credential for u.
	BeginEnroll(ctx context.Context, u store.User, name string) (Challenge, error)
	// FinishEnroll checks the answer and stores the credential.
	FinishEnroll(ctx context.Context, u store.User, state []byte, r Response) (Enrolled, error)
	// BeginVerify starts a verification with the user's credentials of
	// this method (never empty).
	BeginVerify(ctx context.Context, u store.User, creds []store.Credential) (Challenge, error)
	// Verify checks the answer. It updates the credential (counters,
	// used codes) with compare-and-swap, so one answer succeeds once.
	Verify(ctx context.Context, u store.User, creds []store.Credential, state []byte, r Response) (Proof, error)
}

// Registry holds the methods a deployment offers, in prompt order.
type Registry struct {
	methods []Method
}

// NewRegistry returns a registry of methods in the order given.
func NewRegistry(methods ...Method) *Registry { return &Registry{methods: methods} }

// Get returns the method named name.
func (r *Registry) Get(name string) (Method, bool) {
	i := slices.IndexFunc(r.methods, func(m Method) bool { return m.Name() == name })
	if i < 0 {
		return nil, false
	}
	return r.methods[i], true
}

// All returns the methods in prompt order.
func (r *Registry) All() []Method { return slices.Clone(r.methods) }

// Names returns the method names in prompt order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.methods))
	for i, m := range r.methods {
		out[i] = m.Name()
	}
	return out
}
