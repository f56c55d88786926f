// Package recovery is the recovery-code method: ten single-use codes,
// shown once when generated and stored only as hashes, for the day a
// user's phone or security key is lost.
//
// Each code carries 80 random bits, so a plain SHA-256 is enough to keep
// a stolen database from revealing them: there is no feasible search.
package recovery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/store"
)

// Name is the method's name.
const Name = "recovery-code"

// Count is how many codes a set has.
const Count = 10

// alphabet is 32 symbols without the look-alikes i, l, o and 1: codes are
// read off paper and typed by hand.
const alphabet = "abcdefghjkmnpqrstuvwxyz023456789"

// Credentials is the storage the method needs.
type Credentials interface {
	CreateCredential(ctx context.Context, c store.Credential) (store.Credential, error)
	ListCredentials(ctx context.Context, userID string) ([]store.Credential, error)
	UpdateCredential(ctx context.Context, id string, fn func(store.Credential) (store.Credential, error)) (store.Credential, error)
	DeleteCredential(ctx context.Context, id string) error
}

// Method is the recovery-code method.
type Method struct {
	creds Credentials
	now   func() time.Time
}

var _ authn.Method = (*Method)(nil)

// New returns the method.
func New(creds Credentials, now func() time.Time) *Method {
	if now == nil {
		now = time.Now
	}
	return &Method{creds: creds, now: now}
}

// Name implements authn.Method.
func (m *Method) Name() string { return Name }

// Label implements authn.Method.
func (m *Method) Label() string { return "Recovery code" }

// data is the stored set.
type data struct {
	Hashes [][]byte    `json:"hashes"`
	Used   []time.Time `json:"used"` // zero: unused
}

// Remaining counts the unused codes of a stored set.
func Remaining(c store.Credential) int {
	var d data
	if json.Unmarshal(c.Data, &d) != nil {
		return 0
	}
	n := 0
	for _, u := range d.Used {
		if u.IsZero() {
			n++
		}
	}
	return n
}

// generate makes Count codes like "k7dq-9xme-24vb-hnt3" (16 characters
// from a 32-letter alphabet: 80 bits).
func generate() []string {
	codes := make([]string, Count)
	for i := range codes {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		var sb strings.Builder
		for j, v := range b {
			if j > 0 && j%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(alphabet[v&31])
		}
		codes[i] = sb.String()
	}
	return codes
}

// normalize drops separators and case, so "K7DQ 9XME-24VB hnt3" works.
func normalize(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, code)
}

func hash(code string) []byte {
	sum := sha256.Sum256([]byte("stepgate-recovery|" + normalize(code)))
	return sum[:]
}

// BeginEnroll generates a new set and shows it. Nothing is stored until
// the user confirms they saved the codes.
func (m *Method) BeginEnroll(_ context.Context, _ store.User, _ string) (authn.Challenge, error) {
	codes := generate()
	d := data{Hashes: make([][]byte, Count), Used: make([]time.Time, Count)}
	for i, c := range codes {
		d.Hashes[i] = hash(c)
	}
	st, err := json.Marshal(d)
	return authn.Challenge{State: st, Show: map[string]any{"kind": "codes", "codes": codes}}, err
}

// FinishEnroll stores the set, replacing any earlier one: old codes stop
// working the moment new ones exist.
func (m *Method) FinishEnroll(ctx context.Context, u store.User, state []byte, _ authn.Response) (authn.Enrolled, error) {
	var d data
	if err := json.Unmarshal(state, &d); err != nil || len(d.Hashes) != Count {
		return authn.Enrolled{}, errors.New("recovery codes: corrupt enrollment state")
	}
	c, err := m.store(ctx, u, state)
	return authn.Enrolled{Credential: c}, err
}

func (m *Method) store(ctx context.Context, u store.User, blob []byte) (store.Credential, error) {
	existing, err := m.creds.ListCredentials(ctx, u.ID)
	if err != nil {
		return store.Credential{}, err
	}
	for _, c := range existing {
		if c.Type == Name {
			if err := m.creds.DeleteCredential(ctx, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return store.Credential{}, err
			}
		}
	}
	return m.creds.CreateCredential(ctx, store.Credential{
		ID: rand.Text(), UserID: u.ID, Type: Name, Name: "Recovery codes", Data: blob, CreatedAt: m.now().UTC(),
	})
}

// Generate replaces the user's set and returns the new codes, for
// "stepgate user recovery-codes".
func (m *Method) Generate(ctx context.Context, u store.User) ([]string, error) {
	ch, err := m.BeginEnroll(ctx, u, "")
	if err != nil {
		return nil, err
	}
	if _, err := m.store(ctx, u, ch.State); err != nil {
		return nil, err
	}
	return ch.Show["codes"].([]string), nil
}

// BeginVerify asks for a code.
func (m *Method) BeginVerify(context.Context, store.User, []store.Credential) (authn.Challenge, error) {
	return authn.Challenge{Show: map[string]any{"kind": "code"}}, nil
}

// Verify accepts an unused code once and marks it used.
func (m *Method) Verify(ctx context.Context, _ store.User, creds []store.Credential, _ []byte, r authn.Response) (authn.Proof, error) {
	h := hash(r.Code)
	for _, c := range creds {
		if c.Type != Name {
			continue
		}
		var used bool
		matched := false
		now := m.now().UTC()
		_, err := m.creds.UpdateCredential(ctx, c.ID, func(cur store.Credential) (store.Credential, error) {
			var d data
			if err := json.Unmarshal(cur.Data, &d); err != nil {
				return cur, err
			}
			for i, stored := range d.Hashes {
				if subtle.ConstantTimeCompare(stored, h) != 1 {
					continue
				}
				matched = true
				if !d.Used[i].IsZero() {
					used = true
					return cur, authn.ErrReplay
				}
				d.Used[i] = now
				cur.Data, _ = json.Marshal(d)
				cur.LastUsedAt = now
				return cur, nil
			}
			return cur, authn.ErrInvalid
		})
		switch {
		case used:
			return authn.Proof{}, authn.ErrReplay
		case matched && err == nil:
			return authn.Proof{Method: Name, AMR: []string{"otp"}, CredentialID: c.ID}, nil
		case err != nil && !errors.Is(err, authn.ErrInvalid):
			return authn.Proof{}, fmt.Errorf("recovery codes: %w", err)
		}
	}
	return authn.Proof{}, authn.ErrInvalid
}
