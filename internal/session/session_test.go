package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func setup(t *testing.T) (*session.Manager, *clock, store.Store) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), sqlite.Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := session.NewManager(st, session.Config{CookieName: "sg", IdleTimeout: time.Hour, Lifetime: 8 * time.Hour}, c.now)
	return m, c, st
}

func request(m *session.Manager, token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if token != "" {
		r.AddCookie(&http.Cookie{Name: m.CookieName(), Value: token})
	}
	return r
}

var pwd = store.AuthEvent{Method: "password", AMR: []string{"pwd"}}

func TestStartLoadEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _, st := setup(t)
	token, s, err := m.Start(ctx, request(m, ""), "u1", pwd, session.Meta{IP: "127.0.0.1", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 || strings.Contains(s.ID, token) || s.ID == token {
		t.Fatalf("token %q / stored id %q: the store must hold a hash, not the token", token, s.ID)
	}
	if _, err := st.GetSession(ctx, token); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("the raw token is a valid store key")
	}
	got, err := m.Load(ctx, request(m, token))
	if err != nil || got.UserID != "u1" || len(got.Events) != 1 {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	if err := m.End(ctx, request(m, token)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load(ctx, request(m, token)); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Load after End = %v", err)
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("fail/idle", func(t *testing.T) {
		m, c, _ := setup(t)
		token, _, _ := m.Start(ctx, request(m, ""), "u1", pwd, session.Meta{})
		c.add(59 * time.Minute)
		if _, err := m.Load(ctx, request(m, token)); err != nil {
			t.Fatalf("Load within idle timeout: %v", err)
		}
		// Activity moved the idle window.
		c.add(59 * time.Minute)
		if _, err := m.Load(ctx, request(m, token)); err != nil {
			t.Fatalf("Load after activity: %v", err)
		}
		c.add(61 * time.Minute)
		if _, err := m.Load(ctx, request(m, token)); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("idle session still loads: %v", err)
		}
	})
	t.Run("fail/absolute", func(t *testing.T) {
		m, c, _ := setup(t)
		token, _, _ := m.Start(ctx, request(m, ""), "u1", pwd, session.Meta{})
		for range 9 { // active every 55 minutes, yet the lifetime is 8h
			c.add(55 * time.Minute)
			_, _ = m.Load(ctx, request(m, token))
		}
		if _, err := m.Load(ctx, request(m, token)); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("session past its lifetime still loads: %v", err)
		}
	})
}

func TestStepUpRotatesToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, c, _ := setup(t)
	old, _, _ := m.Start(ctx, request(m, ""), "u1", pwd, session.Meta{})
	c.add(time.Minute)
	next, s, err := m.StepUp(ctx, request(m, old), store.AuthEvent{Method: "totp", AMR: []string{"otp"}, Time: c.now()})
	if err != nil {
		t.Fatal(err)
	}
	if next == old || len(s.Events) != 2 || s.Events[1].Method != "totp" {
		t.Fatalf("StepUp = %q, %+v", next, s)
	}
	if _, err := m.Load(ctx, request(m, old)); !errors.Is(err, session.ErrNoSession) {
		t.Fatal("attack: the pre-step-up token still works after rotation (session fixation)")
	}
	if _, err := m.Load(ctx, request(m, next)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.StepUp(ctx, request(m, old), pwd); !errors.Is(err, session.ErrNoSession) {
		t.Fatal("attack: a rotated-out token could step up")
	}
}

func TestSignInReplacesPlantedSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _, _ := setup(t)
	// The attacker signs in, then plants their token in the victim's browser.
	planted, _, _ := m.Start(ctx, request(m, ""), "attacker", pwd, session.Meta{})
	victim, _, err := m.Start(ctx, request(m, planted), "victim", pwd, session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if victim == planted {
		t.Fatal("sign-in kept the planted token")
	}
	if _, err := m.Load(ctx, request(m, planted)); !errors.Is(err, session.ErrNoSession) {
		t.Fatal("the planted session survived the sign-in")
	}
}

func TestMalformedCookies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _, _ := setup(t)
	for _, v := range []string{"", "short", strings.Repeat("A", 42), strings.Repeat("!", 43), strings.Repeat("A", 4096), "' OR 1=1 --"} {
		if _, err := m.Load(ctx, request(m, v)); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("Load(%q) = %v, want ErrNoSession", v, err)
		}
	}
}

func TestCookieAttributes(t *testing.T) {
	t.Parallel()
	m := session.NewManager(nil, session.Config{CookieName: "sg", Secure: true}, nil)
	rec := httptest.NewRecorder()
	m.SetCookie(rec, "tok")
	c := rec.Result().Cookies()[0]
	if c.Name != "__Host-sg" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("cookie = %+v; want __Host- prefix, Secure, HttpOnly, SameSite=Lax, Path=/", c)
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, c, st := setup(t)
	_, s, _ := m.Start(ctx, request(m, ""), "u1", pwd, session.Meta{})
	if err := m.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, s.ID); err != nil {
		t.Fatalf("Sweep removed a live session: %v", err)
	}
	c.add(8 * 24 * time.Hour) // past the absolute lifetime
	if err := m.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, s.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Sweep left an expired session: %v", err)
	}
}

func TestLive(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := session.NewManager(nil, session.Config{CookieName: "sid", IdleTimeout: time.Hour, Lifetime: 12 * time.Hour}, func() time.Time { return now })
	for _, tc := range []struct {
		name string
		s    store.Session
		want bool
	}{
		{"ok/fresh", store.Session{LastSeenAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}, true},
		{"fail/idle", store.Session{LastSeenAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}, false},
		{"fail/expired", store.Session{LastSeenAt: now, ExpiresAt: now}, false},
	} {
		if got := m.Live(tc.s); got != tc.want {
			t.Errorf("%s: Live = %v, want %v", tc.name, got, tc.want)
		}
	}
}
