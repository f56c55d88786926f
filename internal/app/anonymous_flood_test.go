package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/store"
)

// kvCount is how many live key/value entries the server's store holds.
func kvCount(t *testing.T, s *oidcServer) int {
	t.Helper()
	n, _, err := s.app.Store.KVUsage(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuthorizeFloodStoresNothing floods the authorization endpoint as
// an anonymous client, each request as large as a flow may be and
// distinct. Authorization requests travel sealed in the browser until a
// signed-in user completes them, so the store does not grow; a request
// larger than a flow may be is refused with a page; and an altered flow
// is refused. A real sign-in through the same flow still gets its code.
func TestAuthorizeFloodStoresNothing(t *testing.T) {
	s := startOIDC(t, nil)
	anon := browser(t)
	before := kvCount(t, s)
	const requests = 1500
	var lastResume string
	for i := range requests {
		state := strings.Repeat("s", 700) + url.QueryEscape(string(rune('a'+i%26))) + strings.Repeat("x", i%50)
		resp, body := get(t, anon, s.authorizeURL(url.Values{"state": {state}}))
		loc, err := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Path != "/login" {
			t.Fatalf("anonymous authorize %d = %d, want a redirect to sign in:\n%s", i, resp.StatusCode, body)
		}
		lastResume = loc.Query().Get("return_to")
	}
	if after := kvCount(t, s); after != before {
		t.Fatalf("attack/authorize-flood: %d anonymous authorization requests grew the store from %d to %d entries", requests, before, after)
	}
	// The sign-in log takes 600 entries of clients not signed in per
	// address and minute; the flood may straddle two minutes.
	if err := s.app.SignIns.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.app.Store.ListSignIns(context.Background(), store.SignInQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d anonymous authorization requests: %d sign-in log entries, key/value entries %d before and after", requests, len(rows), before)
	if len(rows) == 0 || len(rows) > 2*600 {
		t.Fatalf("attack/authorize-flood: %d anonymous authorization requests wrote %d sign-in log entries, want 1 to %d", requests, len(rows), 2*600)
	}

	t.Run("fail/oversized-request", func(t *testing.T) {
		resp, body := get(t, anon, s.authorizeURL(url.Values{"state": {strings.Repeat("s", 4000)}}))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "too large") {
			t.Fatalf("oversized authorize = %d, want 400 saying it is too large:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("fail/altered-flow", func(t *testing.T) {
		u, _ := url.Parse(lastResume)
		flow := u.Query().Get("flow")
		altered := flow[:len(flow)-4] + "AAAA"
		resp, body := get(t, anon, s.base+"/oauth2/authorize/resume?flow="+url.QueryEscape(altered))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired or was changed") {
			t.Fatalf("altered flow = %d, want 400:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("ok/sign-in-completes-the-flow", func(t *testing.T) {
		loc := s.follow(t, browser(t), s.authorizeURL(nil))
		if loc.Query().Get("code") == "" || loc.Query().Get("state") != "st-123" {
			t.Fatalf("the flow ended at %s, want a code and the state", loc)
		}
	})
}
