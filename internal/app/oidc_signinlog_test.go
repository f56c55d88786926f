package app_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// TestAuthorizeRefusesWhatItCannotLog: with the sign-in log full and set
// to fail closed, the OIDC authorize endpoint issues no code for a
// signed-in user (whose decision it cannot record) and says so with 503,
// a passing condition to retry, not 500, and shows no word of the error.
func TestAuthorizeRefusesWhatItCannotLog(t *testing.T) {
	st := &stallingStore{held: make(chan struct{}, 1), release: make(chan struct{})}
	g := startGatewayOver(t, func(s store.Store) store.Store { st.Store = s; return st }, func(cfg *config.Config) {
		cfg.SignInLog.Overflow = "fail-closed"
		cfg.SignInLog.Buffer = 16
	})
	t.Cleanup(func() {
		st.stalled.Store(false)
		close(st.release)
	})
	b := g.signedInGateway(t)
	st.fill(t, g.server.app.SignIns)

	q := url.Values{"client_id": {rpClientID}, "redirect_uri": {rpRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s-1"}, "nonce": {"n-1"}}
	resp := mustDo(t, b, "GET", g.base+"/oauth2/authorize?"+q.Encode(), "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "code=") {
		t.Fatalf("a code was issued with a full sign-in log: %s", loc)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), "buffer is full") {
		t.Fatalf("authorize with a full log: %d %q, want 503 with no word of the error", resp.StatusCode, body)
	}
}
