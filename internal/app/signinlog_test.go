package app_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

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
	q := store.SignInQuery{App: rpClientID, Decision: "allow"}
	for {
		rows, err := s.app.Store.ListSignIns(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		logged += len(rows)
		q.Before = rows[len(rows)-1].Seq
	}
	t.Logf("%d decisions allowed, %d logged", issued.Load(), logged)
	if issued.Load() != workers*each || int64(logged) != issued.Load() {
		t.Fatalf("%d of %d authorizations issued a code and %d allow entries are logged; want all %d, once each",
			issued.Load(), workers*each, logged, workers*each)
	}
}
