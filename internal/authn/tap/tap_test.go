package tap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// clock is a test clock both the pass store and the database read.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T) (*Store, *clock, string) {
	t.Helper()
	c := &clock{now: time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "t.db"), sqlite.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, c.Now), c, dir
}

func TestIssueAndRedeem(t *testing.T) {
	t.Parallel()
	s, c, dir := setup(t)
	ctx := context.Background()
	code, p, err := s.Issue(ctx, "u1", "admin", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 24 || p.Once || !p.ExpiresAt.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("issued %q %+v", code, p)
	}
	// Stored hashed: the code is nowhere in the database files.
	for _, f := range []string{"t.db", "t.db-wal"} {
		raw, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.Contains(raw, []byte(code)) || bytes.Contains(raw, []byte(strings.ReplaceAll(code, "-", ""))) {
			t.Fatalf("fail/plaintext: the pass is in %s", f)
		}
	}
	if _, err := s.Redeem(ctx, "u1", strings.ToUpper(code)); err != nil {
		t.Fatalf("ok/upper-case: %v", err)
	}
	if _, err := s.Redeem(ctx, "u1", code); err != nil {
		t.Fatalf("ok/multi-use-again: %v", err)
	}
	if _, err := s.Redeem(ctx, "u2", code); !errors.Is(err, ErrInvalid) {
		t.Fatalf("fail/other-user: %v", err)
	}
	if _, err := s.Redeem(ctx, "u1", "aaaa-aaaa-aaaa-aaaa-aaaa"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("fail/wrong-code: %v", err)
	}
	if !s.Valid(ctx, "u1", p.ID) || s.Valid(ctx, "u1", "other") {
		t.Fatal("Valid disagrees with the stored pass")
	}
}

func TestPassExpires(t *testing.T) {
	t.Parallel()
	s, c, _ := setup(t)
	ctx := context.Background()
	code, p, err := s.Issue(ctx, "u1", "admin", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	if _, err := s.Redeem(ctx, "u1", code); !errors.Is(err, ErrInvalid) {
		t.Fatalf("fail/expired: %v", err)
	}
	if s.Valid(ctx, "u1", p.ID) {
		t.Fatal("fail/expired-still-valid")
	}
	// An expired pass frees the quota.
	if _, _, err := s.Issue(ctx, "u1", "admin", time.Hour, false); err != nil {
		t.Fatalf("ok/after-expiry: %v", err)
	}
}

func TestSingleUse(t *testing.T) {
	t.Parallel()
	s, _, _ := setup(t)
	ctx := context.Background()
	code, _, err := s.Issue(ctx, "u1", "admin", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	// Two answers at once: exactly one wins.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Redeem(ctx, "u1", code)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrUsed):
			t.Fatalf("concurrent redeem: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("fail/once: %d redemptions succeeded, want 1", ok)
	}
	if _, err := s.Redeem(ctx, "u1", code); !errors.Is(err, ErrUsed) {
		t.Fatalf("fail/once-again: %v", err)
	}
	// A spent pass makes way for a new one.
	if _, _, err := s.Issue(ctx, "u1", "admin", time.Hour, true); err != nil {
		t.Fatalf("ok/after-spent: %v", err)
	}
}

func TestQuotaAndRevoke(t *testing.T) {
	t.Parallel()
	s, _, _ := setup(t)
	ctx := context.Background()
	code, p, err := s.Issue(ctx, "u1", "admin", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Issue(ctx, "u1", "admin", time.Hour, false); !errors.Is(err, ErrActive) {
		t.Fatalf("fail/second-active-pass: %v", err)
	}
	if err := s.Revoke(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Redeem(ctx, "u1", code); !errors.Is(err, ErrInvalid) {
		t.Fatalf("fail/revoked: %v", err)
	}
	if s.Valid(ctx, "u1", p.ID) {
		t.Fatal("fail/revoked-still-valid")
	}
	if err := s.Revoke(ctx, "u1"); !errors.Is(err, ErrNone) {
		t.Fatalf("revoke without a pass: %v", err)
	}
}

func TestLifetimeBounds(t *testing.T) {
	t.Parallel()
	s, _, _ := setup(t)
	for _, d := range []time.Duration{0, -time.Hour, MinLifetime - time.Second, MaxLifetime + time.Second} {
		if _, _, err := s.Issue(context.Background(), "u1", "admin", d, false); !errors.Is(err, ErrLifetime) {
			t.Errorf("fail/lifetime-%s: %v", d, err)
		}
	}
}
