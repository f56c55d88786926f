// Package totp is the authenticator-app method (RFC 6238): six-digit
// codes from a shared seed, 30-second steps, SHA-1 as every authenticator
// app implements it.
//
// The seed is encrypted at rest (package secrets). A code is accepted at
// most once: the credential remembers the last step it accepted and a
// compare-and-swap refuses any step not after it, so a code read over a
// shoulder or phished in real time cannot be used a second time, even by
// two requests racing.
package totp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
)

// Name is the method's name.
const Name = "totp"

const (
	period = 30 * time.Second
	// periodSeconds is period in whole seconds, for step arithmetic.
	periodSeconds int64 = 30
	// skew accepts the step before and after the current one (±30 s),
	// for clocks that drift and users who type slowly.
	skew = 1
)

var opts = totp.ValidateOpts{Period: uint(period / time.Second), Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// Credentials is the storage the method needs.
type Credentials interface {
	CreateCredential(ctx context.Context, c store.Credential) (store.Credential, error)
	UpdateCredential(ctx context.Context, id string, fn func(store.Credential) (store.Credential, error)) (store.Credential, error)
}

// Method is the TOTP method.
type Method struct {
	creds  Credentials
	box    *secrets.Box
	issuer string // shown in authenticator apps
	now    func() time.Time
}

var _ authn.Method = (*Method)(nil)

// New returns the method. issuer names the deployment in authenticator
// apps ("Stepgate" or the organisation).
func New(creds Credentials, box *secrets.Box, issuer string, now func() time.Time) *Method {
	if now == nil {
		now = time.Now
	}
	return &Method{creds: creds, box: box, issuer: issuer, now: now}
}

// Name implements authn.Method.
func (m *Method) Name() string { return Name }

// Label implements authn.Method.
func (m *Method) Label() string { return "Authenticator app" }

// data is the stored credential.
type data struct {
	Seed     []byte `json:"seed"`      // sealed base32 secret
	LastStep int64  `json:"last_step"` // the newest step accepted
}

// enrollState is kept server-side between showing the QR code and the
// first code.
type enrollState struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Secret []byte `json:"secret"` // sealed
}

func aad(credID, userID string) []byte { return []byte("totp|" + credID + "|" + userID) }

// BeginEnroll creates a seed and shows it as a QR code and as text.
func (m *Method) BeginEnroll(_ context.Context, u store.User, name string) (authn.Challenge, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: m.issuer, AccountName: u.Username, Period: opts.Period, Digits: opts.Digits, Algorithm: opts.Algorithm, SecretSize: 20})
	if err != nil {
		return authn.Challenge{}, err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return authn.Challenge{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return authn.Challenge{}, err
	}
	if strings.TrimSpace(name) == "" {
		name = "Authenticator app"
	}
	id := rand.Text()
	st, err := json.Marshal(enrollState{ID: id, Name: name, Secret: m.box.Seal([]byte(key.Secret()), aad(id, u.ID))})
	if err != nil {
		return authn.Challenge{}, err
	}
	return authn.Challenge{State: st, Show: map[string]any{
		"kind":   "totp",
		"secret": key.Secret(),
		"uri":    key.URL(),
		"qr":     "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
	}}, nil
}

// FinishEnroll stores the credential once the first code proves the app
// has the seed.
func (m *Method) FinishEnroll(ctx context.Context, u store.User, state []byte, r authn.Response) (authn.Enrolled, error) {
	var st enrollState
	if err := json.Unmarshal(state, &st); err != nil {
		return authn.Enrolled{}, err
	}
	secret, err := m.box.Open(st.Secret, aad(st.ID, u.ID))
	if err != nil {
		return authn.Enrolled{}, err
	}
	step, ok := m.match(string(secret), r.Code)
	if !ok {
		return authn.Enrolled{}, authn.ErrInvalid
	}
	b, _ := json.Marshal(data{Seed: st.Secret, LastStep: step})
	now := m.now().UTC()
	c, err := m.creds.CreateCredential(ctx, store.Credential{ID: st.ID, UserID: u.ID, Type: Name, Name: st.Name, Data: b, CreatedAt: now, LastUsedAt: now})
	return authn.Enrolled{Credential: c}, err
}

// BeginVerify asks for a code; there is nothing to send.
func (m *Method) BeginVerify(context.Context, store.User, []store.Credential) (authn.Challenge, error) {
	return authn.Challenge{Show: map[string]any{"kind": "code"}}, nil
}

// Verify accepts a current code of any of the user's apps, once.
func (m *Method) Verify(ctx context.Context, u store.User, creds []store.Credential, _ []byte, r authn.Response) (authn.Proof, error) {
	code := strings.ReplaceAll(strings.TrimSpace(r.Code), " ", "")
	for _, c := range creds {
		var d data
		if c.Type != Name || json.Unmarshal(c.Data, &d) != nil {
			continue
		}
		secret, err := m.box.Open(d.Seed, aad(c.ID, u.ID))
		if err != nil {
			return authn.Proof{}, fmt.Errorf("credential %s: %w", c.ID, err)
		}
		step, ok := m.match(string(secret), code)
		if !ok {
			continue
		}
		if err := m.consume(ctx, c.ID, step); err != nil {
			return authn.Proof{}, err
		}
		return authn.Proof{Method: Name, AMR: []string{"otp"}, CredentialID: c.ID}, nil
	}
	return authn.Proof{}, authn.ErrInvalid
}

// consume records step as used, refusing a step that is not newer than
// the last one accepted.
func (m *Method) consume(ctx context.Context, id string, step int64) error {
	now := m.now().UTC()
	_, err := m.creds.UpdateCredential(ctx, id, func(c store.Credential) (store.Credential, error) {
		var d data
		if err := json.Unmarshal(c.Data, &d); err != nil {
			return c, err
		}
		if step <= d.LastStep {
			return c, authn.ErrReplay
		}
		d.LastStep = step
		c.Data, _ = json.Marshal(d)
		c.LastUsedAt = now
		return c, nil
	})
	return err
}

// match returns the step whose code equals code, within ±skew steps.
func (m *Method) match(secret, code string) (int64, bool) {
	if len(code) != 6 {
		return 0, false
	}
	now := m.now()
	cur := now.Unix() / periodSeconds
	found, step := 0, int64(0)
	for s := cur - skew; s <= cur+skew; s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*periodSeconds, 0), opts)
		if err != nil {
			return 0, false
		}
		// Compare every candidate in constant time, so timing does not
		// tell which step (if any) matched.
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found, step = 1, s
		}
	}
	return step, found == 1
}

// Code returns the current code of a credential, for "stepgate user
// totp-code" in the demo and for tests; it never leaves the server
// otherwise.
func (m *Method) Code(u store.User, c store.Credential) (string, error) {
	secret, err := m.Secret(u, c)
	if err != nil {
		return "", err
	}
	return totp.GenerateCodeCustom(secret, m.now(), opts)
}

// Secret returns the base32 secret of u's registered app c, as shown at
// registration: the demo prints it again on every start, so a reader can
// load it into an authenticator app whenever they like.
func (m *Method) Secret(u store.User, c store.Credential) (string, error) {
	var d data
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return "", err
	}
	secret, err := m.box.Open(d.Seed, aad(c.ID, u.ID))
	if err != nil {
		return "", err
	}
	return string(secret), nil
}

// EnrollNow registers an authenticator app without the confirming first
// code, for administrators and automation ("stepgate user totp"). It
// returns the secret and the otpauth:// URI to load into the app.
func (m *Method) EnrollNow(ctx context.Context, u store.User, name string) (secret, uri string, err error) {
	ch, err := m.BeginEnroll(ctx, u, name)
	if err != nil {
		return "", "", err
	}
	var st enrollState
	if err := json.Unmarshal(ch.State, &st); err != nil {
		return "", "", err
	}
	b, _ := json.Marshal(data{Seed: st.Secret})
	now := m.now().UTC()
	_, err = m.creds.CreateCredential(ctx, store.Credential{ID: st.ID, UserID: u.ID, Type: Name, Name: st.Name, Data: b, CreatedAt: now})
	return ch.Show["secret"].(string), ch.Show["uri"].(string), err
}
