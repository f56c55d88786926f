package app_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// TestSignInLogKeepsEveryDecision: thousands of authorization decisions
// made concurrently, through a deliberately small buffer that forces
// backpressure, each leave exactly one sign-in log entry.
func TestSignInLogKeepsEveryDecision(t *testing.T) {
	s := startOIDC(t, func(cfg *config.Config) { cfg.SignInLog.Buffer = 16 })
	const workers, each = 4, 2500
	clients := make([]*http.Client, workers)
	for i := range clients {
		clients[i] = browser(t)
		s.signIn(t, clients[i], "/account")
	}
	_, challenge := pkce()
	authorize := s.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	var issued atomic.Int64
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for range each {
				resp, err := c.Get(authorize)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if loc, _ := resp.Location(); loc != nil && loc.Query().Get("code") != "" {
					issued.Add(1)
				}
			}
		})
	}
	wg.Wait()
	ctx := context.Background()
	if err := s.app.SignIns.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	logged := 0
	err := audit.WalkSignIns(ctx, s.app.Store, store.SignInQuery{App: rpClientID, Decision: "allow"}, 0,
		func(store.SignIn) error { logged++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d decisions allowed, %d logged", issued.Load(), logged)
	if issued.Load() != workers*each || int64(logged) != issued.Load() {
		t.Fatalf("%d of %d authorizations issued a code and %d allow entries are logged; want all %d, once each",
			issued.Load(), workers*each, logged, workers*each)
	}
}

// TestNoDecisionWithoutALogEntry: when the sign-in log cannot take an
// entry (here it is closed; a full fail-closed buffer answers the same),
// neither a sign-in nor an authorization goes through.
func TestNoDecisionWithoutALogEntry(t *testing.T) {
	s := startOIDC(t, nil)
	signedIn := browser(t)
	s.signIn(t, signedIn, "/account")
	ctx := context.Background()
	before, err := s.app.Store.ListUserSessions(ctx, s.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.app.SignIns.Close(ctx); err != nil {
		t.Fatal(err)
	}

	b := browser(t)
	resp, _ := post(t, b, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "username": {testUser},
		"password": {testPassword}, "return_to": {"/account"}})
	if resp.StatusCode == http.StatusSeeOther {
		t.Fatal("a sign-in went through without its log entry")
	}
	after, err := s.app.Store.ListUserSessions(ctx, s.user.ID)
	if err != nil || len(after) != len(before) {
		t.Fatalf("sessions before %d, after %d (%v): an unlogged sign-in started a session", len(before), len(after), err)
	}

	_, challenge := pkce()
	resp, err = signedIn.Get(s.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); loc != nil && loc.Query().Get("code") != "" {
		t.Fatal("an authorization issued a code without its log entry")
	}
}
