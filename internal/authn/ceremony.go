package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/store"
)

// Ceremony purposes.
const (
	PurposeEnroll = "enroll"
	PurposeVerify = "verify"
)

// ceremonyTTL bounds how long a user may take to answer.
const ceremonyTTL = 5 * time.Minute

// MaxAttempts is how many wrong answers one ceremony takes before it is
// discarded; the user then starts a new one, which the per-user throttle
// counts too.
const MaxAttempts = 5

// ErrNoCeremony means the ceremony expired, was used, or belongs to
// someone else.
var ErrNoCeremony = errkind.New(errkind.Invalid, "this sign-in step has expired or was already used; start again")

// Ceremony is a started enrollment or verification.
type Ceremony struct {
	UserID   string `json:"user_id"`
	Method   string `json:"method"`
	Purpose  string `json:"purpose"`
	State    []byte `json:"state,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
}

// Ceremonies keeps ceremonies in the key/value store under the hash of
// their id, so a database read yields no id a browser could present.
type Ceremonies struct {
	kv  store.KV
	now func() time.Time
}

// NewCeremonies returns a ceremony store.
func NewCeremonies(kv store.KV, now func() time.Time) *Ceremonies {
	if now == nil {
		now = time.Now
	}
	return &Ceremonies{kv: kv, now: now}
}

func ceremonyKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "authn/ceremony/" + hex.EncodeToString(sum[:])
}

// Start stores a ceremony and returns its id.
func (cs *Ceremonies) Start(ctx context.Context, c Ceremony) (string, error) {
	id := rand.Text()
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	_, err = cs.kv.CreateKV(ctx, ceremonyKey(id), b, cs.now().Add(ceremonyTTL))
	return id, err
}

// Load returns the ceremony id if it belongs to userID and has purpose.
func (cs *Ceremonies) Load(ctx context.Context, id, userID, purpose string) (Ceremony, error) {
	var c Ceremony
	e, err := cs.kv.GetKV(ctx, ceremonyKey(id))
	if errors.Is(err, store.ErrNotFound) || id == "" {
		return c, ErrNoCeremony
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(e.Value, &c); err != nil {
		return c, fmt.Errorf("ceremony record is corrupt: %w", err)
	}
	// A ceremony started by one user can never complete for another,
	// whatever the browser sends.
	if c.UserID != userID || c.Purpose != purpose {
		return Ceremony{}, ErrNoCeremony
	}
	return c, nil
}

// Failed counts a wrong answer and discards the ceremony at MaxAttempts.
// It reports whether the ceremony is still usable.
func (cs *Ceremonies) Failed(ctx context.Context, id string) (bool, error) {
	alive := true
	_, err := cs.kv.UpdateKV(ctx, ceremonyKey(id), func(b []byte) ([]byte, error) {
		var c Ceremony
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, err
		}
		c.Attempts++
		alive = c.Attempts < MaxAttempts
		return json.Marshal(c)
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err == nil && !alive {
		err = cs.Done(ctx, id)
	}
	return alive, err
}

// Done ends a ceremony; a second Done reports ErrNoCeremony, so of two
// concurrent completions only one counts.
func (cs *Ceremonies) Done(ctx context.Context, id string) error {
	err := cs.kv.DeleteKV(ctx, ceremonyKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoCeremony
	}
	return err
}
