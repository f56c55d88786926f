// Package session manages browser SSO sessions: their cookies, their
// authentication events, idle and absolute expiry, and id rotation.
//
// The cookie carries a random 256-bit token; the store holds only its
// SHA-256, so a leaked database cannot be replayed as cookies. A new token
// is issued at every sign-in and every step-up, which makes session
// fixation useless: a token planted before the proof dies with it.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// ErrNoSession means the request carries no live session.
var ErrNoSession = errors.New("no session")

// touchEvery limits how often a request writes LastSeenAt: idle expiry
// needs minute precision, not a database write per request.
const touchEvery = time.Minute

// Config configures a Manager.
type Config struct {
	CookieName  string
	IdleTimeout time.Duration
	Lifetime    time.Duration
	// Secure marks cookies Secure and gives them the __Host- prefix, which
	// browsers only accept over TLS, for this host, on path / — so a
	// sibling subdomain cannot plant or overwrite them.
	Secure bool
}

// Manager creates, loads, rotates and ends sessions.
type Manager struct {
	store store.Sessions
	cfg   Config
	now   func() time.Time
}

// NewManager returns a Manager. now is the clock; nil means time.Now.
func NewManager(s store.Sessions, cfg Config, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	if cfg.Secure {
		cfg.CookieName = "__Host-" + cfg.CookieName
	}
	return &Manager{store: s, cfg: cfg, now: now}
}

// CookieName is the name of the session cookie.
func (m *Manager) CookieName() string { return m.cfg.CookieName }

// Meta describes the client a session was created for.
type Meta struct {
	IP        string
	UserAgent string
}

// Start creates a session for userID, proven by ev, and returns its
// bearer token. Any session the request already carried is ended first.
func (m *Manager) Start(ctx context.Context, r *http.Request, userID string, ev store.AuthEvent, meta Meta) (string, store.Session, error) {
	if old := m.token(r); old != "" {
		if err := m.store.DeleteSession(ctx, hashToken(old)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", store.Session{}, err
		}
	}
	now := m.now()
	token := newToken()
	s, err := m.store.CreateSession(ctx, store.Session{
		ID: hashToken(token), UserID: userID, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(m.cfg.Lifetime), Events: []store.AuthEvent{ev},
		IP: meta.IP, UserAgent: truncate(meta.UserAgent, 512),
	})
	if err != nil {
		return "", store.Session{}, fmt.Errorf("create session: %w", err)
	}
	return token, s, nil
}

// Load returns the live session of r, or ErrNoSession. An expired session
// is deleted on sight.
func (m *Manager) Load(ctx context.Context, r *http.Request) (store.Session, error) {
	token := m.token(r)
	if token == "" {
		return store.Session{}, ErrNoSession
	}
	return m.lookup(ctx, token)
}

func (m *Manager) lookup(ctx context.Context, token string) (store.Session, error) {
	return m.ByID(ctx, hashToken(token))
}

// ByID returns the live session with storage id id (the hash of its
// token), or ErrNoSession, applying the same expiry as Load. The gateway
// keeps this id, never the token, to follow a browser's SSO session from
// an application's own host.
func (m *Manager) ByID(ctx context.Context, id string) (store.Session, error) {
	s, err := m.store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return s, ErrNoSession
	}
	if err != nil {
		return s, err
	}
	now := m.now()
	if !m.live(s, now) {
		_ = m.store.DeleteSession(ctx, id)
		return store.Session{}, ErrNoSession
	}
	if now.Sub(s.LastSeenAt) >= touchEvery {
		s, err = m.store.UpdateSession(ctx, id, func(cur store.Session) (store.Session, error) {
			cur.LastSeenAt = now
			return cur, nil
		})
		if errors.Is(err, store.ErrNotFound) {
			return s, ErrNoSession
		}
	}
	return s, err
}

// Live reports whether s, as loaded earlier by ByID, is still within its
// lifetime and idle timeout now. A caller that keeps a session in memory
// for a moment checks it again with Live on every use, so a cached
// session never outlives its expiry.
func (m *Manager) Live(s store.Session) bool { return m.live(s, m.now()) }

func (m *Manager) live(s store.Session, now time.Time) bool {
	return now.Before(s.ExpiresAt) && now.Before(s.LastSeenAt.Add(m.cfg.IdleTimeout))
}

// StepUp records a further proof in r's session and rotates its token.
// The returned token replaces the old one, which stops working at once.
func (m *Manager) StepUp(ctx context.Context, r *http.Request, ev store.AuthEvent) (string, store.Session, error) {
	old := m.token(r)
	if old == "" {
		return "", store.Session{}, ErrNoSession
	}
	cur, err := m.lookup(ctx, old)
	if err != nil {
		return "", store.Session{}, err
	}
	token := newToken()
	next := cur
	next.ID = hashToken(token)
	next.LastSeenAt = m.now()
	next.Events = append(append([]store.AuthEvent(nil), cur.Events...), ev)
	s, err := m.store.ReplaceSession(ctx, cur.ID, next)
	if errors.Is(err, store.ErrNotFound) {
		// Ended or rotated by a concurrent request: the caller must sign in.
		return "", store.Session{}, ErrNoSession
	}
	return token, s, err
}

// End deletes r's session, if any.
func (m *Manager) End(ctx context.Context, r *http.Request) error {
	token := m.token(r)
	if token == "" {
		return nil
	}
	err := m.store.DeleteSession(ctx, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// SetCookie sends the session token. The cookie lives as long as the
// browser session; the server enforces idle and absolute expiry.
func (m *Manager) SetCookie(w http.ResponseWriter, token string) {
	//nolint:gosec // Secure follows the issuer scheme: it must be off for http://localhost
	http.SetCookie(w, &http.Cookie{
		Name: m.cfg.CookieName, Value: token, Path: "/",
		HttpOnly: true, Secure: m.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// ClearCookie removes the session cookie from the browser.
func (m *Manager) ClearCookie(w http.ResponseWriter) {
	//nolint:gosec // as in SetCookie
	http.SetCookie(w, &http.Cookie{
		Name: m.cfg.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: m.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// token returns the bearer token of r, or "" when it has none that could
// be ours (wrong length or alphabet are rejected before any lookup).
func (m *Manager) token(r *http.Request) string {
	c, err := r.Cookie(m.cfg.CookieName)
	if err != nil || len(c.Value) != tokenLen {
		return ""
	}
	if _, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil {
		return ""
	}
	return c.Value
}

// tokenLen is the length of a base64url-encoded 32-byte token.
var tokenLen = base64.RawURLEncoding.EncodedLen(32)

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Sweep deletes sessions past their absolute lifetime; the server runs
// it periodically. Idle sessions are deleted on sight by Load.
func (m *Manager) Sweep(ctx context.Context) error {
	_, err := m.store.DeleteExpiredSessions(ctx, m.now())
	return err
}
