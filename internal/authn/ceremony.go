package authn

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
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

// ceremonies are the ceremonies under way, by id (kept as its hash).
var ceremonies = kvspace.JSON[Ceremony](kvspace.Ceremony)

// Start stores a ceremony and returns its id.
func (cs *Ceremonies) Start(ctx context.Context, c Ceremony) (string, error) {
	id := rand.Text()
	err := ceremonies.At(id).Create(ctx, cs.kv, c, cs.now().Add(ceremonyTTL))
	return id, err
}

// Load returns the ceremony id if it belongs to userID and has purpose.
func (cs *Ceremonies) Load(ctx context.Context, id, userID, purpose string) (Ceremony, error) {
	c, err := ceremonies.At(id).Get(ctx, cs.kv)
	if errors.Is(err, store.ErrNotFound) || id == "" {
		return Ceremony{}, ErrNoCeremony
	}
	if err != nil {
		return c, err
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
	err := ceremonies.At(id).Update(ctx, cs.kv, func(c Ceremony) (Ceremony, error) {
		c.Attempts++
		alive = c.Attempts < MaxAttempts
		return c, nil
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
	err := ceremonies.At(id).Delete(ctx, cs.kv)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoCeremony
	}
	return err
}
