//go:build cgo

package dbgate

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/oauth"
)

// countingTokens counts the verifications that reach the provider.
type countingTokens struct {
	TokenVerifier
	calls atomic.Int64
}

func (c *countingTokens) VerifyAccessToken(ctx context.Context, raw string) (*oauth.AccessClaims, error) {
	c.calls.Add(1)
	return c.TokenVerifier.VerifyAccessToken(ctx, raw)
}

// TestAttackTokenRevokedSharedCheck: sessions sharing one token check it
// once a second between them, and a revocation still stops every one of
// them no more than a second after the last check that succeeded: no
// session runs a statement on another's check older than that.
func TestAttackTokenRevokedSharedCheck(t *testing.T) {
	r := newRig(t)
	counter := &countingTokens{TokenVerifier: r.tokens}
	r.srv.Tokens = counter
	ctx := context.Background()
	tok := r.token("u-alice", "bank", "password")
	conns := []interface {
		Exec(context.Context, string) error
	}{}
	for range 3 {
		c := r.mustConnect("alice", tok)
		conns = append(conns, execFunc(func(ctx context.Context, sql string) error { _, err := c.Exec(ctx, sql); return err }))
	}
	signIns := counter.calls.Load()
	r.advance(1100 * time.Millisecond)
	for i, c := range conns {
		if err := c.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	if got := counter.calls.Load() - signIns; got != 1 {
		t.Errorf("three sessions sharing a token checked it %d times in a second, want 1", got)
	}
	r.tokens.revoke(tok)
	r.advance(500 * time.Millisecond) // the shared check is 0.5 s old: still good
	for i, c := range conns {
		if err := c.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatalf("session %d within a second of its check: %v", i, err)
		}
	}
	r.advance(600 * time.Millisecond) // 1.1 s after the last check that succeeded
	for i, c := range conns {
		err := c.Exec(ctx, "SELECT 1")
		if sqlState(err) != "28000" {
			t.Errorf("session %d, 1.1 s after the last good check of its revoked token: %v, want 28000", i, err)
		}
	}
}

type execFunc func(context.Context, string) error

func (f execFunc) Exec(ctx context.Context, sql string) error { return f(ctx, sql) }

// TestSharedCheckIsTheSameUsers: a check another session made of the
// same token is shared only for the same user name: a session that
// claims another name with the token is checked afresh, and refused.
func TestSharedCheckIsTheSameUsers(t *testing.T) {
	r := newRig(t)
	tok := r.token("u-alice", "bank", "password")
	ctx := context.Background()
	id, err := r.srv.recheckToken(ctx, tok, "alice")
	if err != nil || id.user.Username != "alice" {
		t.Fatalf("first check: %+v, %v", id, err)
	}
	again, err := r.srv.recheckToken(ctx, tok, "alice")
	if err != nil || again != id {
		t.Fatalf("a check under a second ago is not shared: %v", err)
	}
	if _, err := r.srv.recheckToken(ctx, tok, "bob"); err == nil {
		t.Fatal("alice's token passed for bob through a shared check")
	}
	r.advance(1100 * time.Millisecond)
	later, err := r.srv.recheckToken(ctx, tok, "alice")
	if err != nil || later == id {
		t.Fatalf("a check over a second old was reused: %v", err)
	}
}
