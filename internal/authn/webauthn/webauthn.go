// Package webauthn is the passkey and security-key method (W3C WebAuthn
// Level 3), built on github.com/go-webauthn/webauthn.
//
// A WebAuthn proof is phishing-resistant: the browser puts the page's
// origin into what the authenticator signs and the authenticator scopes
// each credential to the relying party id, so a look-alike site that
// relays the ceremony gets a signature that names the wrong origin and is
// refused. The method serves second-factor step-up (Verify, with the
// user's credentials listed) and passwordless sign-in (BeginLogin and
// FinishLogin, where the authenticator names the account).
//
// Each stored credential keeps its public key, signature counter, AAGUID,
// transports and flags. A counter that does not move forward means two
// authenticators hold the same private key, so the sign-in is refused and
// the record is left unchanged. Updates go through compare-and-swap, so
// of two racing sign-ins with the same counter only one succeeds.
package webauthn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/store"
)

// Name is the method's name.
const Name = "webauthn"

// Show kinds: the page renders the ceremony named by Show["kind"].
const (
	KindRegister = "webauthn-register"
	KindLogin    = "webauthn-login"
)

// defaultCredentialName labels a credential enrolled without a name.
const defaultCredentialName = "Passkey"

var (
	// ErrCloned means the signature counter did not move forward: the
	// credential's private key is in two authenticators.
	ErrCloned = errors.New("the security key's signature counter did not move forward, so the key may have been cloned; the sign-in was refused: remove this passkey and register the key again, or contact your administrator")
	// ErrAuthenticatorNotAllowed means the authenticator's model is not on
	// webauthn.allowed_aaguids.
	ErrAuthenticatorNotAllowed = fmt.Errorf("this kind of passkey or security key is not allowed here; use one your organisation approved: %w", authn.ErrNotAllowed)
	// ErrAlreadyRegistered means the credential id belongs to a stored
	// credential already.
	ErrAlreadyRegistered = errors.New("this passkey is already registered")
)

// Config is the relying party.
type Config struct {
	// RPID is the domain credentials are bound to (webauthn.rp_id).
	RPID string
	// RPName is what authenticators show (webauthn.rp_name).
	RPName string
	// Origins are the page origins allowed to run ceremonies.
	Origins []string
	// AllowedAAGUIDs limits registration to these authenticator models;
	// empty allows any.
	AllowedAAGUIDs []string
}

// Credentials is the storage the method needs.
type Credentials interface {
	CreateCredential(ctx context.Context, c store.Credential) (store.Credential, error)
	ListCredentials(ctx context.Context, userID string) ([]store.Credential, error)
	UpdateCredential(ctx context.Context, id string, fn func(store.Credential) (store.Credential, error)) (store.Credential, error)
}

// Users finds the account a discoverable credential names.
type Users interface {
	GetUser(ctx context.Context, id string) (store.User, error)
}

// Method is the WebAuthn method.
type Method struct {
	wa      *gowebauthn.WebAuthn
	creds   Credentials
	users   Users
	allowed []uuid.UUID
	now     func() time.Time
}

var _ authn.Method = (*Method)(nil)

// New returns the method for the relying party cfg.
func New(cfg Config, creds Credentials, users Users, now func() time.Time) (*Method, error) {
	if now == nil {
		now = time.Now
	}
	allowed := make([]uuid.UUID, 0, len(cfg.AllowedAAGUIDs))
	for _, a := range cfg.AllowedAAGUIDs {
		id, err := uuid.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("webauthn: allowed AAGUID %q is not a UUID; write it like cb69481e-8ff7-4039-93ec-0a2729a154a8: %w", a, err)
		}
		allowed = append(allowed, id)
	}
	wa, err := gowebauthn.New(&gowebauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: cfg.RPName,
		RPOrigins:     cfg.Origins,
		// Attestation is not verified (there is no metadata service to
		// check it against), so asking for it would only cost privacy.
		AttestationPreference: protocol.PreferNoAttestation,
		// Ceremonies expire with their authn.Ceremony (five minutes, on
		// the injected clock); the library's own wall-clock expiry stays
		// off.
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn: relying party %q: %w; check webauthn.rp_id and webauthn.origins", cfg.RPID, err)
	}
	return &Method{wa: wa, creds: creds, users: users, allowed: allowed, now: now}, nil
}

// Name implements authn.Method.
func (m *Method) Name() string { return Name }

// Label implements authn.Method.
func (m *Method) Label() string { return "Passkey or security key" }

// AAGUID returns the authenticator model id of a stored WebAuthn
// credential as a lower-case UUID ("" when it has none), so a policy can
// check it later.
func AAGUID(c store.Credential) string {
	wc, err := decode(c)
	if err != nil || len(wc.Authenticator.AAGUID) != 16 {
		return ""
	}
	id, err := uuid.FromBytes(wc.Authenticator.AAGUID)
	if err != nil {
		return ""
	}
	return id.String()
}

// credentialID is the store id of a WebAuthn credential: its credential
// id, base64url. Keying the record by it makes a second registration of
// the same credential id fail as a conflict, for this user or any other
// (WebAuthn §7.1 step 26), so nobody can register a credential id that
// is already another account's and confuse which account it signs in.
func credentialID(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// decode reads a stored credential.
func decode(c store.Credential) (gowebauthn.Credential, error) {
	var wc gowebauthn.Credential
	if c.Type != Name {
		return wc, fmt.Errorf("webauthn: credential %s is a %s credential", c.ID, c.Type)
	}
	if err := json.Unmarshal(c.Data, &wc); err != nil {
		return wc, fmt.Errorf("webauthn: credential %s is corrupt: %w", c.ID, err)
	}
	return wc, nil
}

// user adapts a store user and their WebAuthn credentials to the library.
type user struct {
	u     store.User
	creds []gowebauthn.Credential
}

// WebAuthnID is the user handle: the user id, which is random and never
// reused, so it reveals nothing and never names another account later.
func (w user) WebAuthnID() []byte   { return []byte(w.u.ID) }
func (w user) WebAuthnName() string { return w.u.Username }
func (w user) WebAuthnDisplayName() string {
	if w.u.DisplayName != "" {
		return w.u.DisplayName
	}
	return w.u.Username
}
func (w user) WebAuthnCredentials() []gowebauthn.Credential { return w.creds }

// newUser keeps the WebAuthn credentials of creds.
func newUser(u store.User, creds []store.Credential) user {
	w := user{u: u}
	for _, c := range creds {
		if c.UserID != u.ID {
			continue
		}
		if wc, err := decode(c); err == nil {
			w.creds = append(w.creds, wc)
		}
	}
	return w
}

// enrollState is kept server-side between the options and the new
// credential.
type enrollState struct {
	Session gowebauthn.SessionData `json:"session"`
	Name    string                 `json:"name"`
}

// BeginEnroll returns registration options. A resident key is preferred,
// so that the passkey is discoverable and can later sign in without a
// user name; the user's existing credentials are excluded, so the same
// authenticator is not registered twice.
func (m *Method) BeginEnroll(ctx context.Context, u store.User, name string) (authn.Challenge, error) {
	existing, err := m.creds.ListCredentials(ctx, u.ID)
	if err != nil {
		return authn.Challenge{}, fmt.Errorf("webauthn: list credentials: %w", err)
	}
	w := newUser(u, existing)
	exclude := make([]protocol.CredentialDescriptor, len(w.creds))
	for i, c := range w.creds {
		exclude[i] = c.Descriptor()
	}
	creation, session, err := m.wa.BeginRegistration(w,
		gowebauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementPreferred,
			RequireResidentKey: protocol.ResidentKeyNotRequired(),
			UserVerification:   protocol.VerificationPreferred,
		}),
		gowebauthn.WithExclusions(exclude),
		func(o *protocol.PublicKeyCredentialCreationOptions) error {
			// credProps tells whether the key became discoverable.
			o.Extensions.CredProps = true
			return nil
		},
	)
	if err != nil {
		return authn.Challenge{}, fmt.Errorf("webauthn: begin registration: %w", err)
	}
	if strings.TrimSpace(name) == "" {
		name = defaultCredentialName
	}
	return challenge(KindRegister, creation.Response, enrollState{Session: *session, Name: strings.TrimSpace(name)})
}

// FinishEnroll verifies the new credential and stores it.
func (m *Method) FinishEnroll(ctx context.Context, u store.User, state []byte, r authn.Response) (authn.Enrolled, error) {
	var st enrollState
	if err := json.Unmarshal(state, &st); err != nil {
		return authn.Enrolled{}, fmt.Errorf("webauthn: enrollment state is corrupt: %w", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(r.Data)
	if err != nil {
		return authn.Enrolled{}, invalid(err)
	}
	// The library checks the challenge, origin, RP id hash, user
	// presence, the attestation statement and that the session was
	// started for this user.
	wc, err := m.wa.CreateCredential(newUser(u, nil), st.Session, parsed)
	if err != nil {
		return authn.Enrolled{}, invalid(err)
	}
	if err := m.checkAAGUID(wc.Authenticator.AAGUID); err != nil {
		return authn.Enrolled{}, err
	}
	// The attestation blobs are kept: with a metadata service later,
	// they let an administrator re-check which model each key is.
	b, err := json.Marshal(wc)
	if err != nil {
		return authn.Enrolled{}, err
	}
	c, err := m.creds.CreateCredential(ctx, store.Credential{
		ID: credentialID(wc.ID), UserID: u.ID, Type: Name, Name: st.Name, Data: b, CreatedAt: m.now().UTC(),
	})
	if errors.Is(err, store.ErrConflict) {
		return authn.Enrolled{}, fmt.Errorf("webauthn: %w: %w", ErrAlreadyRegistered, authn.ErrInvalid)
	}
	if err != nil {
		return authn.Enrolled{}, fmt.Errorf("webauthn: store credential: %w", err)
	}
	return authn.Enrolled{Credential: c}, nil
}

// checkAAGUID enforces webauthn.allowed_aaguids. An all-zero AAGUID is
// refused when a list is set (unless listed): an authenticator that hides
// its model must not slip past the list by doing so.
func (m *Method) checkAAGUID(raw []byte) error {
	if len(m.allowed) == 0 {
		return nil
	}
	id, err := uuid.FromBytes(raw)
	if err != nil {
		return fmt.Errorf("webauthn: the authenticator reported no model (AAGUID): %w", ErrAuthenticatorNotAllowed)
	}
	for _, a := range m.allowed {
		if a == id {
			return nil
		}
	}
	return fmt.Errorf("webauthn: authenticator model %s is not in webauthn.allowed_aaguids: %w", id, ErrAuthenticatorNotAllowed)
}

// BeginVerify returns assertion options listing the user's credentials.
// User verification is preferred: a passkey with a PIN or biometric makes
// the proof multi-factor on its own, and a plain security key still
// works as a second factor.
func (m *Method) BeginVerify(_ context.Context, u store.User, creds []store.Credential) (authn.Challenge, error) {
	w := newUser(u, creds)
	if len(w.creds) == 0 {
		return authn.Challenge{}, fmt.Errorf("webauthn: %w", authn.ErrNotEnrolled)
	}
	assertion, session, err := m.wa.BeginLogin(w, gowebauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return authn.Challenge{}, fmt.Errorf("webauthn: begin login: %w", err)
	}
	return challenge(KindLogin, assertion.Response, session)
}

// Verify checks an assertion by one of the user's credentials against the
// ceremony's state.
func (m *Method) Verify(ctx context.Context, u store.User, creds []store.Credential, state []byte, r authn.Response) (authn.Proof, error) {
	var session gowebauthn.SessionData
	if err := json.Unmarshal(state, &session); err != nil {
		return authn.Proof{}, fmt.Errorf("webauthn: ceremony state is corrupt: %w", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(r.Data)
	if err != nil {
		return authn.Proof{}, invalid(err)
	}
	w := newUser(u, creds)
	if len(w.creds) == 0 {
		return authn.Proof{}, fmt.Errorf("webauthn: %w", authn.ErrNotEnrolled)
	}
	// The session names the user it was started for; the library refuses
	// it for anyone else, and checks the challenge, origin, RP id hash,
	// flags and signature against the stored public key.
	if _, err := m.wa.ValidateLogin(w, session, parsed); err != nil {
		return authn.Proof{}, invalid(err)
	}
	return m.commit(ctx, parsed)
}

// BeginLogin starts a passwordless sign-in: no user is known yet, so the
// options list no credentials and the browser offers the passkeys it has
// for this site. User verification is required, because the passkey is
// then the only proof.
func (m *Method) BeginLogin(_ context.Context) (authn.Challenge, error) {
	assertion, session, err := m.wa.BeginDiscoverableLogin(gowebauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return authn.Challenge{}, fmt.Errorf("webauthn: begin passwordless login: %w", err)
	}
	return challenge(KindLogin, assertion.Response, session)
}

// FinishLogin checks a passwordless assertion and returns the id of the
// user it signs in. spend is called once the signature has verified and
// before anything is recorded: it makes the challenge single use, and its
// error refuses the sign-in.
//
// The user handle in the response is not covered by the signature, so it
// is only a hint: the credential must be one of that user's own and the
// signature must verify with its stored key. Someone who puts a victim's
// user handle next to their own credential gets "unknown credential".
func (m *Method) FinishLogin(ctx context.Context, state, data []byte, spend func(context.Context) error) (string, authn.Proof, error) {
	if spend == nil {
		return "", authn.Proof{}, errors.New("webauthn: passwordless login needs a way to spend its challenge")
	}
	var session gowebauthn.SessionData
	if err := json.Unmarshal(state, &session); err != nil {
		return "", authn.Proof{}, fmt.Errorf("webauthn: ceremony state is corrupt: %w", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(data)
	if err != nil {
		return "", authn.Proof{}, invalid(err)
	}
	var (
		found     store.User
		lookupErr error // a storage failure, not a wrong answer
	)
	handler := func(_, userHandle []byte) (gowebauthn.User, error) {
		u, err := m.users.GetUser(ctx, string(userHandle))
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				lookupErr = err
			}
			return nil, err
		}
		creds, err := m.creds.ListCredentials(ctx, u.ID)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		found = u
		return newUser(u, creds), nil
	}
	if _, _, err := m.wa.ValidatePasskeyLogin(handler, session, parsed); err != nil {
		if lookupErr != nil {
			return "", authn.Proof{}, fmt.Errorf("webauthn: look up the passkey's account: %w", lookupErr)
		}
		return "", authn.Proof{}, invalid(err)
	}
	// Checked only after the signature: a disabled account is not
	// revealed to someone who does not hold its passkey.
	if found.Disabled {
		return "", authn.Proof{}, fmt.Errorf("webauthn: %w", authn.ErrDisabledAccount)
	}
	// A replayed assertion verifies as well as the first: only spending
	// the challenge tells them apart. It is spent before the counter is
	// recorded, so a replay of a counting key is refused as a replay, not
	// taken for a clone.
	if err := spend(ctx); err != nil {
		return "", authn.Proof{}, err
	}
	p, err := m.commit(ctx, parsed)
	if err != nil {
		return "", authn.Proof{}, err
	}
	return found.ID, p, nil
}

// commit records a verified assertion: the new signature counter, the
// backup state and the time of use, in one compare-and-swap.
//
// WebAuthn §7.2 step 22: a counter that does not exceed the stored one
// (when either is non-zero) means a second authenticator holds the same
// private key — a cloned security key. The sign-in is refused and the
// record left as it was. The check runs inside the update, against the
// stored value of that moment, so two assertions racing with the same
// counter cannot both pass. Authenticators without a counter (most
// synced passkeys) always report 0 and are not affected; replay of their
// assertions is stopped by the single-use challenge instead.
func (m *Method) commit(ctx context.Context, parsed *protocol.ParsedCredentialAssertionData) (authn.Proof, error) {
	ad := parsed.Response.AuthenticatorData
	id := credentialID(parsed.RawID)
	now := m.now().UTC()
	updated, err := m.creds.UpdateCredential(ctx, id, func(c store.Credential) (store.Credential, error) {
		wc, err := decode(c)
		if err != nil {
			return c, err
		}
		stored := wc.Authenticator.SignCount
		if (stored != 0 || ad.Counter != 0) && ad.Counter <= stored {
			return c, fmt.Errorf("webauthn: credential %s: counter %d after %d: %w: %w", c.ID, ad.Counter, stored, ErrCloned, authn.ErrInvalid)
		}
		wc.Authenticator.SignCount = ad.Counter
		// Update keeps UserVerified as registration saw it and takes the
		// backup state from this assertion.
		wc.Flags = wc.Flags.Update(ad.Flags)
		if c.Data, err = json.Marshal(wc); err != nil {
			return c, err
		}
		c.LastUsedAt = now
		return c, nil
	})
	if err != nil {
		if errors.Is(err, authn.ErrInvalid) {
			return authn.Proof{}, err
		}
		return authn.Proof{}, fmt.Errorf("webauthn: update credential %s: %w", id, err)
	}
	amr := []string{"hwk"}
	if ad.Flags.HasUserVerified() {
		// RFC 8176 "user": the authenticator verified the person (PIN or
		// biometric), which strength.UserVerifiedAMR reads back.
		amr = append(amr, "user")
	}
	return authn.Proof{Method: Name, AMR: amr, PhishingResistant: true, CredentialID: id, AAGUID: AAGUID(updated)}, nil
}

// challenge builds what the page shows and what the server keeps. The
// options are a json.RawMessage: encoded again for the page they stay
// the options object, not a string holding it.
func challenge(kind string, options, state any) (authn.Challenge, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return authn.Challenge{}, err
	}
	st, err := json.Marshal(state)
	if err != nil {
		return authn.Challenge{}, err
	}
	return authn.Challenge{State: st, Show: map[string]any{"kind": kind, "options": json.RawMessage(opts)}}, nil
}

// invalid marks a failed verification as a wrong answer, keeping the
// library's detail for the log.
func invalid(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return fmt.Errorf("webauthn: %w: %w (%s)", authn.ErrInvalid, err, pe.DevInfo)
	}
	return fmt.Errorf("webauthn: %w: %w", authn.ErrInvalid, err)
}
