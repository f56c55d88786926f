// Package push is sign-in approval on a device the user registered
// before, with number matching.
//
// A device is a browser, signed in as the user, that registered for
// push. Registering creates a credential of type "push" holding the hash
// of a random 256-bit device secret; the browser keeps the credential id
// and the secret in an HttpOnly, SameSite=Strict, long-lived cookie
// (DeviceCookieName). The device's routes are authenticated by that
// cookie alone, never by the sign-in session that is waiting for
// approval: the approval must come from a second thing the user has.
//
// A verification creates a pending approval (ApprovalTTL, 2 minutes)
// with a random number from 10 to 99 that the waiting page shows. The
// device shows that number among two decoys and the user picks the one
// on the other screen. Number matching stops approval fatigue ("push
// bombing"): a user who taps "approve" on a prompt they did not cause
// still has to know the number, which only the attacker's screen shows.
// A wrong pick fails the approval for good and counts against the user's
// throttle; "deny" refuses; "not-me" refuses and files a fraud report.
//
// Proofs carry AMR ["swk"] (a software-held key). They do not claim user
// verification, and push is not phishing-resistant: a real-time phishing
// proxy can relay the number.
package push

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Name is the method's name.
const Name = "push"

const (
	// ApprovalTTL is how long an approval waits for an answer.
	ApprovalTTL = 2 * time.Minute
	// MaxPending is how many approvals a user may have waiting at once;
	// more would let an attacker flood the device with prompts.
	MaxPending = 3
	// deviceCookieLife is the device cookie's lifetime; browsers cap
	// cookies at 400 days.
	deviceCookieLife = 400 * 24 * time.Hour
	// fraudRecordLife is how long a fraud report stays in the store.
	fraudRecordLife = 90 * 24 * time.Hour
)

// Answers to an approval besides a number.
const (
	ChoiceDeny  = "deny"
	ChoiceNotMe = "not-me"
)

// Approval states.
const (
	statusPending  = "pending"
	statusApproved = "approved"
	statusWrong    = "wrong-number"
	statusDenied   = "denied"
	statusFraud    = "reported"
	statusUsed     = "used"
)

var (
	// ErrNoDevice means the request carries no valid device cookie.
	ErrNoDevice = errkind.New(errkind.Unauthenticated, "this browser is not registered for sign-in approvals; register it from your account's security page")
	// ErrAnswered means the approval already has an answer; a second
	// answer (a retry after a wrong number) is refused.
	ErrAnswered = errkind.New(errkind.Conflict, "this sign-in request was already answered")
)

// Credentials is the storage the method needs.
type Credentials interface {
	CreateCredential(ctx context.Context, c store.Credential) (store.Credential, error)
	GetCredential(ctx context.Context, id string) (store.Credential, error)
	UpdateCredential(ctx context.Context, id string, fn func(store.Credential) (store.Credential, error)) (store.Credential, error)
}

// Options are what the method needs.
type Options struct {
	Creds Credentials
	// KV holds approvals (for ApprovalTTL) and fraud reports.
	KV store.KV
	// SessionUser returns the id of the user signed in on r, or an error.
	// Only the waiting page's status route uses it.
	SessionUser func(r *http.Request) (string, error)
	// Frame puts the device page in the server's shared page layout.
	Frame Frame
	// Secure marks the device cookie Secure with the __Host- prefix; set
	// it when the issuer is https.
	Secure bool
	// OnFraudReport, when set, is called after a user answered "not-me":
	// someone who knows the password tried to sign in. The risk engine
	// raises the user's risk from it.
	OnFraudReport func(ctx context.Context, userID string)
	// Throttle counts wrong numbers per user; nil makes one on KV.
	Throttle *authn.Throttle
	// PollInterval is how often the event stream looks for new
	// approvals; zero means one second.
	PollInterval time.Duration
	Now          func() time.Time
	Log          *slog.Logger
}

// Frame renders a page of this method inside the server's shared layout
// (package web hands its own). The method renders only its part of the
// page, so it never needs to know what the layout reads.
type Frame interface {
	Render(w http.ResponseWriter, status int, title string, content template.HTML) error
}

// Method is the push method.
type Method struct {
	o    Options
	page *template.Template // the device page
}

var _ authn.Method = (*Method)(nil)

// New returns the method.
func New(o Options) (*Method, error) {
	if o.Creds == nil || o.KV == nil || o.SessionUser == nil || o.Frame == nil {
		return nil, errors.New("push: credentials, key/value store, SessionUser and Frame are all required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Throttle == nil {
		o.Throttle = authn.NewThrottle(o.KV, o.Now)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	page, err := deviceTemplate()
	if err != nil {
		return nil, fmt.Errorf("push: device page template: %w", err)
	}
	return &Method{o: o, page: page}, nil
}

// Name implements authn.Method.
func (m *Method) Name() string { return Name }

// Label implements authn.Method.
func (m *Method) Label() string { return "Approval on a registered device" }

// DeviceCookieName is the device cookie's name for this deployment.
func (m *Method) DeviceCookieName() string {
	if m.o.Secure {
		return "__Host-stepgate_push_device"
	}
	return "stepgate_push_device"
}

// data is the stored credential.
type data struct {
	SecretHash []byte `json:"secret_hash"`
}

type enrollState struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// BeginEnroll asks the user to confirm registering this browser. It
// shows {"kind": "push-register", "device_name": name}.
func (m *Method) BeginEnroll(_ context.Context, _ store.User, name string) (authn.Challenge, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "This browser"
	}
	b, _ := json.Marshal(enrollState{ID: rand.Text(), Name: name})
	return authn.Challenge{State: b, Show: map[string]any{"kind": "push-register", "device_name": name}}, nil
}

// FinishEnroll registers the browser that sent the answer. The device
// cookie is in Enrolled.Show["set_cookie"] (an *http.Cookie): the
// enrollment page must set it on its response and must never render it.
// Show["kind"] is "push-registered".
func (m *Method) FinishEnroll(ctx context.Context, u store.User, raw []byte, _ authn.Response) (authn.Enrolled, error) {
	var st enrollState
	if err := json.Unmarshal(raw, &st); err != nil || st.ID == "" {
		return authn.Enrolled{}, authn.ErrNoCeremony
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	sum := sha256.Sum256(secret)
	b, _ := json.Marshal(data{SecretHash: sum[:]})
	now := m.o.Now().UTC()
	c, err := m.o.Creds.CreateCredential(ctx, store.Credential{ID: st.ID, UserID: u.ID, Type: Name, Name: st.Name, Data: b, CreatedAt: now})
	if err != nil {
		return authn.Enrolled{}, fmt.Errorf("store push device: %w", err)
	}
	//nolint:gosec // G124: Secure follows the issuer scheme; it must be off for http://localhost
	cookie := &http.Cookie{
		Name: m.DeviceCookieName(), Value: c.ID + "." + base64.RawURLEncoding.EncodeToString(secret),
		Path: "/", MaxAge: int(deviceCookieLife / time.Second), HttpOnly: true, Secure: m.o.Secure,
		// Strict: no other site can make the browser send the device
		// cookie, so no cross-site request can answer an approval.
		SameSite: http.SameSiteStrictMode,
	}
	return authn.Enrolled{Credential: c, Show: map[string]any{"kind": "push-registered", "device_name": c.Name, "set_cookie": cookie}}, nil
}

// device returns the push credential r's device cookie names, after
// checking its secret.
func (m *Method) device(r *http.Request) (store.Credential, error) {
	ck, err := r.Cookie(m.DeviceCookieName())
	if err != nil {
		return store.Credential{}, ErrNoDevice
	}
	id, enc, ok := strings.Cut(ck.Value, ".")
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || err != nil || len(secret) != 32 || id == "" || len(id) > 64 {
		return store.Credential{}, ErrNoDevice
	}
	c, err := m.o.Creds.GetCredential(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Credential{}, ErrNoDevice
	}
	if err != nil {
		return store.Credential{}, fmt.Errorf("load push device: %w", err)
	}
	var d data
	if c.Type != Name || json.Unmarshal(c.Data, &d) != nil {
		return store.Credential{}, ErrNoDevice
	}
	sum := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(sum[:], d.SecretHash) != 1 {
		return store.Credential{}, ErrNoDevice
	}
	return c, nil
}

// approval is one pending request, in the key/value store for
// ApprovalTTL.
type approval struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Number    int       `json:"number"`
	Choices   []int     `json:"choices"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Status    string    `json:"status"`
	DeviceID  string    `json:"device_id,omitempty"` // the device that answered
}

// approvals are kept by user and id: a device or a waiting page can only
// ever reach its own user's approvals, whatever id it sends (an id with
// the separator makes no key).
var approvals = kvspace.JSON[approval](kvspace.PushApproval)

func throttleKey(userID string) string { return "push/" + userID }

// ThrottleKey names the throttle key of userID's wrong answers to this
// method, for an administrator's unlock.
func ThrottleKey(userID string) string { return throttleKey(userID) }

type verifyState struct {
	ID string `json:"id"`
}

// randIn returns a uniform random integer in [lo, hi].
func randIn(lo, hi int) int {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo+1)))
	if err != nil {
		panic("crypto/rand failed: " + err.Error()) // the platform is broken
	}
	return lo + int(n.Int64())
}

// numbers returns the number to match and the three choices (it and two
// decoys) in random order.
func numbers() (int, []int) {
	n := randIn(10, 99)
	choices := []int{n}
	for len(choices) < 3 {
		if d := randIn(10, 99); !slices.Contains(choices, d) {
			choices = append(choices, d)
		}
	}
	for i := len(choices) - 1; i > 0; i-- {
		j := randIn(0, i)
		choices[i], choices[j] = choices[j], choices[i]
	}
	return n, choices
}

// BeginVerify creates a pending approval. It shows {"kind": "push",
// "number": N, "approval": id}; the waiting page polls
// GET /stepup/push/status?approval=id and sends the step-up form once the
// status is no longer "pending".
func (m *Method) BeginVerify(ctx context.Context, u store.User, creds []store.Credential) (authn.Challenge, error) {
	if !slices.ContainsFunc(creds, func(c store.Credential) bool { return c.Type == Name && c.UserID == u.ID }) {
		return authn.Challenge{}, authn.ErrNotEnrolled
	}
	if err := m.o.Throttle.Check(ctx, throttleKey(u.ID)); err != nil {
		return authn.Challenge{}, err
	}
	pending, err := m.pending(ctx, u.ID)
	if err != nil {
		return authn.Challenge{}, err
	}
	if len(pending) >= MaxPending {
		return authn.Challenge{}, fmt.Errorf("%w: %d sign-in requests are already waiting on your device; answer or let them expire", authn.ErrThrottled, len(pending))
	}
	now := m.o.Now().UTC()
	n, choices := numbers()
	a := approval{ID: rand.Text(), UserID: u.ID, Number: n, Choices: choices, CreatedAt: now, ExpiresAt: now.Add(ApprovalTTL), Status: statusPending}
	if err := approvals.At(u.ID, a.ID).Create(ctx, m.o.KV, a, a.ExpiresAt); err != nil {
		return authn.Challenge{}, fmt.Errorf("store approval: %w", err)
	}
	st, _ := json.Marshal(verifyState{ID: a.ID})
	return authn.Challenge{State: st, Show: map[string]any{"kind": "push", "number": n, "approval": a.ID}}, nil
}

// Verify reports the approval's outcome: authn.ErrPending until the
// device answered, then a proof once, or ErrInvalid (wrong number),
// ErrDenied (deny or not-me), ErrReplay (already used) or
// authn.ErrNoCeremony (expired).
func (m *Method) Verify(ctx context.Context, u store.User, creds []store.Credential, raw []byte, _ authn.Response) (authn.Proof, error) {
	var st verifyState
	if err := json.Unmarshal(raw, &st); err != nil || st.ID == "" {
		return authn.Proof{}, authn.ErrNoCeremony
	}
	now := m.o.Now()
	var (
		a       approval
		outcome error
	)
	err := approvals.At(u.ID, st.ID).Update(ctx, m.o.KV, func(cur approval) (approval, error) {
		a, outcome = cur, nil
		if !now.Before(a.ExpiresAt) && a.Status == statusPending {
			return a, authn.ErrNoCeremony
		}
		switch a.Status {
		case statusPending:
			return a, authn.ErrPending
		case statusWrong:
			return a, authn.ErrInvalid
		case statusDenied, statusFraud:
			return a, authn.ErrDenied
		case statusUsed:
			return a, authn.ErrReplay
		case statusApproved:
			// Single use: the status moves on in the same compare-and-swap
			// that reads it, so two polls racing get one proof.
			a.Status = statusUsed
			return a, nil
		}
		return a, fmt.Errorf("approval has unknown status %q", a.Status)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return authn.Proof{}, authn.ErrNoCeremony
	case errors.Is(err, store.ErrConflict):
		return authn.Proof{}, authn.ErrReplay
	case err != nil:
		return authn.Proof{}, err
	case outcome != nil:
		return authn.Proof{}, outcome
	}
	// The device must still be registered: removing a lost phone stops
	// the approvals it gave but that were not yet collected.
	if !slices.ContainsFunc(creds, func(c store.Credential) bool { return c.ID == a.DeviceID && c.Type == Name && c.UserID == u.ID }) {
		return authn.Proof{}, authn.ErrNotEnrolled
	}
	if err := m.o.Throttle.Reset(ctx, throttleKey(u.ID)); err != nil {
		return authn.Proof{}, fmt.Errorf("reset throttle: %w", err)
	}
	return authn.Proof{Method: Name, AMR: []string{"swk"}, CredentialID: a.DeviceID}, nil
}

// pending lists the user's approvals still waiting for an answer.
func (m *Method) pending(ctx context.Context, userID string) ([]approval, error) {
	items, err := approvals.List(ctx, m.o.KV, userID)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	now := m.o.Now()
	var out []approval
	for _, it := range items {
		if a := it.Value; it.Err == nil && a.Status == statusPending && a.UserID == userID && now.Before(a.ExpiresAt) {
			out = append(out, a)
		}
	}
	return out, nil
}

// answer records device's answer to approval id. choice is a number or
// ChoiceDeny or ChoiceNotMe. It returns the resulting status.
func (m *Method) answer(ctx context.Context, device store.Credential, id string, choice any) (string, error) {
	now := m.o.Now().UTC()
	var a approval
	err := approvals.At(device.UserID, id).Update(ctx, m.o.KV, func(cur approval) (approval, error) {
		a = cur
		switch {
		case a.UserID != device.UserID:
			return a, store.ErrNotFound
		case a.Status != statusPending:
			// One answer per approval: after a wrong number the
			// attacker's session cannot have the user try again.
			return a, ErrAnswered
		case !now.Before(a.ExpiresAt):
			return a, store.ErrNotFound
		}
		a.DeviceID = device.ID
		switch c := choice.(type) {
		case int:
			if c == a.Number {
				a.Status = statusApproved
			} else {
				a.Status = statusWrong
			}
		case string:
			switch c {
			case ChoiceDeny:
				a.Status = statusDenied
			case ChoiceNotMe:
				a.Status = statusFraud
			default:
				return a, errBadChoice
			}
		default:
			return a, errBadChoice
		}
		return a, nil
	})
	if errors.Is(err, store.ErrConflict) {
		return "", ErrAnswered
	}
	if err != nil {
		return "", err
	}
	log := m.o.Log.With("user", a.UserID, "device", device.ID, "approval_created", a.CreatedAt)
	switch a.Status {
	case statusWrong:
		log.InfoContext(ctx, "push approval failed: wrong number chosen")
		if err := m.o.Throttle.Fail(ctx, throttleKey(a.UserID)); err != nil {
			return "", fmt.Errorf("count failure: %w", err)
		}
	case statusFraud:
		if err := m.reportFraud(ctx, a); err != nil {
			return "", err
		}
	default:
		log.InfoContext(ctx, "push approval answered", "status", a.Status)
	}
	return a.Status, nil
}

var errBadChoice = errkind.New(errkind.Invalid, `choice must be one of the numbers shown, "deny" or "not-me"`)

// FraudReport is the record kept when a user answers "not-me".
type FraudReport struct {
	UserID     string    `json:"user_id"`
	DeviceID   string    `json:"device_id"`
	ApprovalID string    `json:"approval_id"`
	Requested  time.Time `json:"requested"`
	Reported   time.Time `json:"reported"`
}

// fraudReports are the fraud reports, by user and report time.
var fraudReports = kvspace.JSON[FraudReport](kvspace.PushFraud)

func (m *Method) reportFraud(ctx context.Context, a approval) error {
	now := m.o.Now().UTC()
	r := FraudReport{UserID: a.UserID, DeviceID: a.DeviceID, ApprovalID: a.ID, Requested: a.CreatedAt, Reported: now}
	id := now.Format("20060102T150405.000000000Z") + "-" + a.ID
	if err := fraudReports.At(a.UserID, id).Create(ctx, m.o.KV, r, now.Add(fraudRecordLife)); err != nil {
		return fmt.Errorf("store fraud report: %w", err)
	}
	m.o.Log.WarnContext(ctx, "sign-in approval reported as fraud: the user says they did not try to sign in, so someone else likely knows their password",
		"user", a.UserID, "device", a.DeviceID, "approval_created", a.CreatedAt)
	if m.o.OnFraudReport != nil {
		m.o.OnFraudReport(ctx, a.UserID)
	}
	return nil
}

// FraudReports returns the user's fraud reports, oldest first.
func (m *Method) FraudReports(ctx context.Context, userID string) ([]FraudReport, error) {
	items, err := fraudReports.List(ctx, m.o.KV, userID)
	if err != nil {
		return nil, fmt.Errorf("list fraud reports: %w", err)
	}
	out := make([]FraudReport, 0, len(items))
	for _, it := range items {
		if it.Err == nil {
			out = append(out, it.Value)
		}
	}
	return out, nil
}
