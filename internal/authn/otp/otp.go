// Package otp is the one-time-code method in two variants built from one
// type: "otp-email" (a code mailed to the user's confirmed address) and
// "otp-sms" (a code sent by text message to a confirmed phone number).
//
// Neither is phishing-resistant: a code typed into a fake page works on
// the real one for as long as it lives. They are a step up from a
// password alone and a fallback for users without an authenticator app
// or a passkey, nothing more.
//
// # Codes
//
// A code is six digits from crypto/rand, lives CodeTTL (5 minutes) and is
// accepted once. The server keeps only an HMAC of it (keyed by a server
// secret, so a copy of the database cannot be searched through the 10^6
// candidates offline) in a short-lived record of the key/value store, with
// the number of guesses made so far; the ceremony state the caller keeps
// holds only that record's reference. Guesses are counted in the record
// itself, by compare-and-swap, so the limit holds whatever the caller
// does and however many requests race.
//
// # Limits and the brute-force arithmetic
//
//   - MaxGuesses (5) guesses per code; the sixth is refused even when it
//     is right, and the code is dead.
//   - MaxSends (5) codes per user and per destination in any SendWindow
//     (15 minutes). The per-destination limit stops one phone number or
//     mailbox being bombed through many accounts (and running up the SMS
//     bill); the per-user limit stops fresh codes being requested to get
//     fresh guesses.
//   - Wrong guesses also feed the per-user authn.Throttle, which locks the
//     user out for 30 s after 5 failures, doubling to 15 minutes.
//
// An attacker who already has the password gets at most 5 codes × 5
// guesses = 25 guesses per 15 minutes from the send and guess limits
// alone: 2,400 a day, a success chance of 2,400 / 10^6 = 0.24 % a day. The
// throttle is the tighter bound: after the first 5 failures it allows one
// guess per lock, and locks reach 15 minutes after 10 failures, so a day
// yields about 10 + 96 ≈ 106 guesses: about 0.01 % a day, 1 % in three
// months of uninterrupted attack, every failure in the log
// (TestBruteForceDay runs that day and counts 104). Without the
// limits, 10^6 guesses find any code; with them an online search is
// hopeless before anyone notices.
//
// # Enrollment
//
// otp-email: BeginEnroll sends a code to the user's account email address
// at once and shows {"kind": "code"}; FinishEnroll takes the code and
// stores the address. The address is the one confirmed at that moment:
// if the account's email changes later, codes keep going to the
// confirmed one until the user enrolls again, so whoever can edit a
// profile cannot redirect codes to themselves.
//
// otp-sms takes two steps within one ceremony. BeginEnroll shows
// {"kind": "phone"} and sends nothing. The first FinishEnroll takes the
// phone number in Response.Code (E.164, like +4915123456789; spaces,
// dashes and brackets are ignored), sends a code and returns
// authn.ErrNextStep with Enrolled.Show = {"kind": "code", ...}. The page
// keeps the same ceremony and sends the code to FinishEnroll again,
// which stores the number. Sending another number during the code step
// counts as a wrong code.
//
// A user has at most one credential of each variant: a confirmed new
// address or number replaces the old one.
package otp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Method names.
const (
	EmailName = "otp-email"
	SMSName   = "otp-sms"
)

// Limits. The package comment explains the arithmetic behind them.
const (
	// CodeTTL is how long a code is valid.
	CodeTTL = 5 * time.Minute
	// MaxGuesses is how many answers one code takes; then it is dead.
	MaxGuesses = 5
	// MaxSends is how many codes a user, and a destination, receive per
	// SendWindow.
	MaxSends = 5
	// SendWindow is the period MaxSends applies to.
	SendWindow = 15 * time.Minute
)

var (
	// ErrPhoneFormat means the phone number given at enrollment is not in
	// international (E.164) form.
	ErrPhoneFormat error = &authn.InputError{Fix: "Enter the phone number in international format, with + and the country code, like +49 151 23456789."}
	// ErrNoEmail means the account has no usable email address to send
	// codes to.
	ErrNoEmail = errors.New("the account has no valid email address; an administrator must set one before codes can be sent by email")
	// ErrCodeDead means a code took MaxGuesses answers and no longer
	// counts, even when the next answer is right.
	ErrCodeDead = fmt.Errorf("%w: this code took too many wrong answers; request a new one", authn.ErrThrottled)
)

// Credentials is the storage the method needs.
type Credentials interface {
	CreateCredential(ctx context.Context, c store.Credential) (store.Credential, error)
	ListCredentials(ctx context.Context, userID string) ([]store.Credential, error)
	UpdateCredential(ctx context.Context, id string, fn func(store.Credential) (store.Credential, error)) (store.Credential, error)
	DeleteCredential(ctx context.Context, id string) error
}

// Deps are what both variants need.
type Deps struct {
	Creds Credentials
	// KV holds code records and send counters, all short-lived.
	KV store.KV
	// Box seals destinations (email addresses and phone numbers are
	// personal data) in credentials and code records.
	Box *secrets.Box
	// HashKey keys the hashes of codes and destinations; at least 32
	// bytes kept outside the database. DeriveHashKey makes one from the
	// secrets key.
	HashKey []byte
	// Throttle counts wrong answers per user; nil makes one on KV.
	Throttle *authn.Throttle
	Now      func() time.Time
	Log      *slog.Logger
}

// DeriveHashKey derives the HashKey from the secrets key, so a deployment
// has one secret to keep rather than two.
func DeriveHashKey(secretsKey []byte) []byte {
	m := hmac.New(sha256.New, secretsKey)
	m.Write([]byte("stepgate otp hash key v1"))
	return m.Sum(nil)
}

// Method is one variant of the one-time-code method.
type Method struct {
	Deps
	name   string
	label  string
	amr    string
	sender Sender
}

var _ authn.Method = (*Method)(nil)

// NewEmail returns the "otp-email" method, sending with sender.
func NewEmail(d Deps, sender Sender) (*Method, error) {
	return newMethod(d, sender, EmailName, "Code by email", "otp")
}

// NewSMS returns the "otp-sms" method, sending with sender.
func NewSMS(d Deps, sender Sender) (*Method, error) {
	return newMethod(d, sender, SMSName, "Code by text message", "sms")
}

func newMethod(d Deps, sender Sender, name, label, amr string) (*Method, error) {
	switch {
	case d.Creds == nil || d.KV == nil || d.Box == nil || sender == nil:
		return nil, fmt.Errorf("%s: credentials, key/value store, secrets box and sender are all required", name)
	case len(d.HashKey) < 32:
		return nil, fmt.Errorf("%s: the hash key must be at least 32 bytes; derive it with otp.DeriveHashKey(secrets key)", name)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Throttle == nil {
		d.Throttle = authn.NewThrottle(d.KV, d.Now)
	}
	return &Method{Deps: d, name: name, label: label, amr: amr, sender: sender}, nil
}

// Name implements authn.Method.
func (m *Method) Name() string { return m.name }

// Label implements authn.Method.
func (m *Method) Label() string { return m.label }

// data is the stored credential.
type data struct {
	Dest []byte `json:"dest"` // sealed destination
}

// state is the ceremony state the caller keeps: a reference to the code
// record, never the code.
type state struct {
	Ref  string `json:"ref"`
	Name string `json:"name,omitempty"` // enrollment: the credential's label
}

// codeRecord is one sent code, in the key/value store until it expires.
type codeRecord struct {
	UserID    string    `json:"user_id"`
	Method    string    `json:"method"`
	Purpose   string    `json:"purpose"`
	CredID    string    `json:"cred_id,omitempty"` // verify: the credential the code went to
	Dest      []byte    `json:"dest,omitempty"`    // enroll: the sealed destination to store
	Hash      []byte    `json:"hash"`
	ExpiresAt time.Time `json:"expires_at"`
	Guesses   int       `json:"guesses"`
	Used      bool      `json:"used,omitempty"`
}

// codes are the codes sent, by reference (kept as its hash).
var codes = kvspace.JSON[codeRecord](kvspace.OTPCode)

func credAAD(method, credID, userID string) []byte {
	return []byte("otp|" + method + "|" + credID + "|" + userID)
}

func refAAD(ref, userID string) []byte { return []byte("otp-code|" + ref + "|" + userID) }

// hashCode binds the code to its record, so a hash copied into another
// record matches nothing.
func (m *Method) hashCode(ref, code string) []byte {
	h := hmac.New(sha256.New, m.HashKey)
	h.Write([]byte("code\x00" + ref + "\x00" + code))
	return h.Sum(nil)
}

func (m *Method) hashDest(dest string) string {
	h := hmac.New(sha256.New, m.HashKey)
	h.Write([]byte("dest\x00" + dest))
	return hex.EncodeToString(h.Sum(nil))
}

func throttleKey(userID string) string { return "otp/" + userID }

// ThrottleKey names the throttle key of userID's wrong answers to this
// method, for an administrator's unlock.
func ThrottleKey(userID string) string { return throttleKey(userID) }

// newCode returns six uniformly random digits.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("generate code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// normalizeCode drops the spaces and dashes people type between digits.
func normalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

// codeShow is what the page shows while a code is on its way.
func codeShow(masked string) map[string]any {
	return map[string]any{"kind": "code", "sent_to": masked, "expires_in": "5 minutes"}
}

// BeginEnroll starts confirming a destination. For otp-email it sends a
// code to u.Email now; for otp-sms it asks for the phone number first
// (see the package comment). name labels the credential.
func (m *Method) BeginEnroll(ctx context.Context, u store.User, name string) (authn.Challenge, error) {
	st := state{Ref: rand.Text(), Name: strings.TrimSpace(name)}
	b, _ := json.Marshal(st)
	if m.name == SMSName {
		return authn.Challenge{State: b, Show: map[string]any{"kind": "phone"}}, nil
	}
	email, err := validEmail(u.Email)
	if err != nil {
		return authn.Challenge{}, err
	}
	if err := m.send(ctx, u, st.Ref, authn.PurposeEnroll, email, ""); err != nil {
		return authn.Challenge{}, err
	}
	return authn.Challenge{State: b, Show: codeShow(MaskEmail(email))}, nil
}

// FinishEnroll checks the confirming code and stores the destination.
// For otp-sms, a call before any code was sent takes the phone number,
// sends the code and returns authn.ErrNextStep with the code page in
// Enrolled.Show.
func (m *Method) FinishEnroll(ctx context.Context, u store.User, raw []byte, r authn.Response) (authn.Enrolled, error) {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil || st.Ref == "" {
		return authn.Enrolled{}, authn.ErrNoCeremony
	}
	if m.name == SMSName {
		_, err := codes.At(st.Ref).Get(ctx, m.KV)
		if errors.Is(err, store.ErrNotFound) {
			phone, err := NormalizePhone(r.Code)
			if err != nil {
				return authn.Enrolled{}, err
			}
			if err := m.send(ctx, u, st.Ref, authn.PurposeEnroll, phone, ""); err != nil {
				return authn.Enrolled{}, err
			}
			return authn.Enrolled{Show: codeShow(MaskPhone(phone))}, authn.ErrNextStep
		}
		if err != nil {
			return authn.Enrolled{}, fmt.Errorf("load code: %w", err)
		}
	}
	rec, err := m.check(ctx, u, st.Ref, authn.PurposeEnroll, r.Code)
	if err != nil {
		return authn.Enrolled{}, err
	}
	dest, err := m.Box.Open(rec.Dest, refAAD(st.Ref, u.ID))
	if err != nil {
		return authn.Enrolled{}, fmt.Errorf("open enrollment destination: %w", err)
	}
	return m.store(ctx, u, st.Name, string(dest))
}

// store saves a confirmed destination and removes the user's earlier
// credential of this variant.
func (m *Method) store(ctx context.Context, u store.User, name, dest string) (authn.Enrolled, error) {
	if name == "" {
		name = "Email"
		if m.name == SMSName {
			name = "Phone"
		}
	}
	existing, err := m.Creds.ListCredentials(ctx, u.ID)
	if err != nil {
		return authn.Enrolled{}, fmt.Errorf("list credentials: %w", err)
	}
	id := rand.Text()
	b, _ := json.Marshal(data{Dest: m.Box.Seal([]byte(dest), credAAD(m.name, id, u.ID))})
	now := m.Now().UTC()
	c, err := m.Creds.CreateCredential(ctx, store.Credential{ID: id, UserID: u.ID, Type: m.name, Name: name, Data: b, CreatedAt: now, LastUsedAt: now})
	if err != nil {
		return authn.Enrolled{}, fmt.Errorf("store credential: %w", err)
	}
	for _, old := range existing {
		if old.Type == m.name {
			if err := m.Creds.DeleteCredential(ctx, old.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return authn.Enrolled{}, fmt.Errorf("remove replaced credential: %w", err)
			}
		}
	}
	return authn.Enrolled{Credential: c}, nil
}

// EnrollNow registers a destination without a confirming code, for
// administrators and automation ("stepgate user otp"), who vouch for it.
func (m *Method) EnrollNow(ctx context.Context, u store.User, name, dest string) (store.Credential, error) {
	var err error
	if m.name == SMSName {
		dest, err = NormalizePhone(dest)
	} else {
		dest, err = validEmail(dest)
	}
	if err != nil {
		return store.Credential{}, err
	}
	e, err := m.store(ctx, u, name, dest)
	return e.Credential, err
}

// BeginVerify sends a code to the user's confirmed destination.
func (m *Method) BeginVerify(ctx context.Context, u store.User, creds []store.Credential) (authn.Challenge, error) {
	// A locked-out user gets no new codes: fresh codes would be fresh
	// guesses.
	if err := m.Throttle.Check(ctx, throttleKey(u.ID)); err != nil {
		return authn.Challenge{}, err
	}
	c, ok := m.pick(creds)
	if !ok {
		return authn.Challenge{}, authn.ErrNotEnrolled
	}
	dest, err := m.destination(c)
	if err != nil {
		return authn.Challenge{}, err
	}
	ref := rand.Text()
	if err := m.send(ctx, u, ref, authn.PurposeVerify, dest, c.ID); err != nil {
		return authn.Challenge{}, err
	}
	b, _ := json.Marshal(state{Ref: ref})
	return authn.Challenge{State: b, Show: codeShow(mask(m.name, dest))}, nil
}

// Verify accepts the code of this ceremony once, within CodeTTL and
// MaxGuesses.
func (m *Method) Verify(ctx context.Context, u store.User, creds []store.Credential, raw []byte, r authn.Response) (authn.Proof, error) {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil || st.Ref == "" {
		return authn.Proof{}, authn.ErrNoCeremony
	}
	rec, err := m.check(ctx, u, st.Ref, authn.PurposeVerify, r.Code)
	if err != nil {
		return authn.Proof{}, err
	}
	// The credential must still be there: a code sent before the
	// destination was removed proves nothing any more.
	i := -1
	for j, c := range creds {
		if c.ID == rec.CredID && c.Type == m.name && c.UserID == u.ID {
			i = j
		}
	}
	if i < 0 {
		return authn.Proof{}, authn.ErrNotEnrolled
	}
	now := m.Now().UTC()
	if _, err := m.Creds.UpdateCredential(ctx, rec.CredID, func(c store.Credential) (store.Credential, error) {
		c.LastUsedAt = now
		return c, nil
	}); err != nil && !errors.Is(err, store.ErrConflict) {
		return authn.Proof{}, fmt.Errorf("record credential use: %w", err)
	}
	return authn.Proof{Method: m.name, AMR: []string{m.amr}, CredentialID: rec.CredID}, nil
}

// pick returns the user's credential of this variant.
func (m *Method) pick(creds []store.Credential) (store.Credential, bool) {
	for _, c := range creds {
		if c.Type == m.name {
			return c, true
		}
	}
	return store.Credential{}, false
}

func (m *Method) destination(c store.Credential) (string, error) {
	var d data
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return "", fmt.Errorf("credential %s is corrupt: %w", c.ID, err)
	}
	dest, err := m.Box.Open(d.Dest, credAAD(c.Type, c.ID, c.UserID))
	if err != nil {
		return "", fmt.Errorf("credential %s: %w", c.ID, err)
	}
	return string(dest), nil
}

// send makes a code, records its hash under ref and sends it.
func (m *Method) send(ctx context.Context, u store.User, ref, purpose, dest, credID string) error {
	// Both limits are checked before anything is sent; the user's count
	// goes first so a throttled account cannot even probe whether a
	// destination is over its limit.
	if err := m.countSend(ctx, "user", u.ID); err != nil {
		return err
	}
	if err := m.countSend(ctx, "dest", m.hashDest(dest)); err != nil {
		return err
	}
	code, err := newCode()
	if err != nil {
		return err
	}
	now := m.Now()
	rec := codeRecord{
		UserID: u.ID, Method: m.name, Purpose: purpose, CredID: credID,
		Hash: m.hashCode(ref, code), ExpiresAt: now.Add(CodeTTL).UTC(),
	}
	if purpose == authn.PurposeEnroll {
		rec.Dest = m.Box.Seal([]byte(dest), refAAD(ref, u.ID))
	}
	if err := codes.At(ref).Create(ctx, m.KV, rec, rec.ExpiresAt); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Two first steps of one enrollment raced; one code is live.
			return authn.ErrReplay
		}
		return fmt.Errorf("store code: %w", err)
	}
	if err := m.sender.Send(ctx, dest, code, purpose); err != nil {
		_ = codes.At(ref).Delete(ctx, m.KV)
		return fmt.Errorf("send %s code: %w", m.name, err)
	}
	m.Log.InfoContext(ctx, "one-time code sent", "method", m.name, "user", u.ID, "purpose", purpose, "to", mask(m.name, dest))
	return nil
}

// check counts one answer against the code record under ref and reports
// whether it matched. The count, the single-use mark and the comparison
// happen in one compare-and-swap, so racing answers cannot each get
// MaxGuesses guesses or each use a right code.
//
// The answer is first admitted by the user's throttle, which counts it
// before the comparison: the per-code limit alone would let parallel
// answers spread over many codes (one per send) get far more guesses
// than the lock allows.
func (m *Method) check(ctx context.Context, u store.User, ref, purpose, answer string) (codeRecord, error) {
	attempt, err := m.Throttle.Begin(ctx, throttleKey(u.ID))
	if err != nil {
		return codeRecord{}, err
	}
	// An answer that was never compared (an unknown, used or dead code)
	// gives its guess back.
	defer func() { _ = attempt.Release(ctx) }()
	code := codes.At(ref)
	got := m.hashCode(ref, normalizeCode(answer))
	now := m.Now()
	var (
		rec     codeRecord
		outcome error
	)
	err = retry(func() error {
		return code.Update(ctx, m.KV, func(cur codeRecord) (codeRecord, error) {
			rec, outcome = cur, nil
			switch {
			// A code sent for one user's ceremony never completes another's,
			// nor enrollment for verification or one variant for the other.
			case rec.UserID != u.ID || rec.Method != m.name || rec.Purpose != purpose:
				return rec, authn.ErrNoCeremony
			case rec.Used:
				return rec, authn.ErrReplay
			case !now.Before(rec.ExpiresAt):
				return rec, authn.ErrNoCeremony
			case rec.Guesses >= MaxGuesses:
				return rec, ErrCodeDead
			}
			rec.Guesses++
			if hmac.Equal(got, rec.Hash) { // constant time
				rec.Used = true
			} else {
				outcome = authn.ErrInvalid
			}
			return rec, nil
		})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return rec, authn.ErrNoCeremony
	case err != nil:
		return rec, err
	case outcome != nil:
		attempt.Failed()
		return rec, outcome
	}
	// Only a sign-in clears the failures. Were a confirmed enrollment to
	// clear them too, someone guessing at a victim's codes could reset
	// the lock by enrolling a phone of their own between rounds.
	if purpose == authn.PurposeVerify {
		if err := attempt.Succeeded(ctx); err != nil {
			return rec, fmt.Errorf("reset throttle: %w", err)
		}
	}
	return rec, nil
}

// countSend admits one more code for the subject id of kind (a user, a
// destination's hash), or returns ErrThrottled.
//
// It counts in fixed buckets of SendWindow and admits a send while this
// bucket and the one before hold fewer than MaxSends together. Any
// SendWindow-long span lies within two neighbouring buckets, so no span
// ever sees more than MaxSends codes; the price is that a user who used
// all five may wait up to two windows.
func (m *Method) countSend(ctx context.Context, kind, id string) error {
	now := m.Now()
	bucket := now.UnixNano() / int64(SendWindow)
	sent := func(b int64) kvspace.Ref[int64] {
		return kvspace.OTPSent.At(kind, id, strconv.FormatInt(b, 10))
	}
	prev, err := sent(bucket-1).Get(ctx, m.KV)
	if errors.Is(err, store.ErrNotFound) {
		prev = 0
	} else if err != nil {
		return fmt.Errorf("read send count: %w", err)
	}
	if prev >= MaxSends {
		return fmt.Errorf("%w: no more than %d codes per %s; wait and request a new one", authn.ErrThrottled, MaxSends, SendWindow)
	}
	// The bucket outlives its own window by one more, while it still
	// counts as "the one before".
	expires := time.Unix(0, (bucket+2)*int64(SendWindow))
	return retry(func() error {
		err := sent(bucket).Update(ctx, m.KV, func(n int64) (int64, error) {
			if prev+n >= MaxSends {
				return n, fmt.Errorf("%w: no more than %d codes per %s; wait and request a new one", authn.ErrThrottled, MaxSends, SendWindow)
			}
			return n + 1, nil
		})
		if errors.Is(err, store.ErrNotFound) {
			err = sent(bucket).Create(ctx, m.KV, 1, expires)
		}
		return err
	})
}

// retry repeats a compare-and-swap that lost a race, a few times.
func retry(fn func() error) error {
	var err error
	for range 8 {
		if err = fn(); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return err
}

// validEmail accepts a bare address; a display name or angle brackets
// are refused, so nothing but an address reaches an SMTP envelope.
func validEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if s == "" || err != nil || a.Address != s || a.Name != "" {
		return "", ErrNoEmail
	}
	return s, nil
}

// NormalizePhone returns a phone number in E.164 form (+ and 8 to 15
// digits, no leading zero in the country code), ignoring the spaces,
// dots, dashes and brackets people write.
func NormalizePhone(s string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case strings.ContainsRune(" .-()/", r):
		default:
			return "", ErrPhoneFormat
		}
	}
	p := b.String()
	if len(p) < 9 || len(p) > 16 || p[0] != '+' || p[1] == '0' {
		return "", ErrPhoneFormat
	}
	return p, nil
}

// Masked returns the credential's destination as it may be shown
// ("+49 ••• ••• 12 34", "a•••@example.com"): enough for the user to
// recognise it, not enough to learn it from a screen or a screenshot.
func Masked(c store.Credential, box *secrets.Box) (string, error) {
	var d data
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return "", fmt.Errorf("credential %s is corrupt: %w", c.ID, err)
	}
	dest, err := box.Open(d.Dest, credAAD(c.Type, c.ID, c.UserID))
	if err != nil {
		return "", fmt.Errorf("credential %s: %w", c.ID, err)
	}
	return mask(c.Type, string(dest)), nil
}

func mask(method, dest string) string {
	if method == SMSName {
		return MaskPhone(dest)
	}
	return MaskEmail(dest)
}

// MaskPhone shows the country code and the last four digits of an E.164
// number: "+4915123451234" → "+49 ••• ••• 12 34". Country codes 1 (North
// America) and 7 (Russia, Kazakhstan) have one digit; others are shown
// with two, which for a three-digit code hides the third.
func MaskPhone(p string) string {
	digits := strings.TrimPrefix(p, "+")
	if len(digits) < 8 {
		return "•••"
	}
	cc := 2
	if digits[0] == '1' || digits[0] == '7' {
		cc = 1
	}
	last := digits[len(digits)-4:]
	return "+" + digits[:cc] + " ••• ••• " + last[:2] + " " + last[2:]
}

// MaskEmail keeps the first character of the local part and the domain:
// "alice@example.com" → "a•••@example.com".
func MaskEmail(e string) string {
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" {
		return "•••"
	}
	r := []rune(local)
	return string(r[0]) + "•••@" + domain
}
