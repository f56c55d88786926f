package web

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
)

var loginCeremonyRe = regexp.MustCompile(`data-ceremony="([^"]*)"`)

// passkeyRig is a rig whose sign-in page offers passkeys.
func passkeyRig(t *testing.T) *rig {
	t.Helper()
	return newRig(t, func(d *Deps) {
		m, err := webauthn.New(webauthn.Config{RPID: "stepgate.test", RPName: "Stepgate", Origins: []string{"http://stepgate.test"}},
			d.KV.(store.Store), d.KV.(store.Store), d.Now)
		if err != nil {
			t.Fatal(err)
		}
		box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		d.Passkeys = m
		d.PasskeyChallenges = authn.NewLoginChallenges(box, d.KV, d.Now)
	})
}

// kvCount is how many live key/value entries the store holds.
func (rg *rig) kvCount() int {
	rg.t.Helper()
	n, _, err := rg.st.KVUsage(context.Background(), "")
	if err != nil {
		rg.t.Fatal(err)
	}
	return n
}

// TestLoginPageFloodStoresNothing floods the sign-in page as anonymous
// clients without cookies, each view starting a passkey sign-in. The
// ceremonies travel sealed in the pages, so the store does not grow.
func TestLoginPageFloodStoresNothing(t *testing.T) {
	rg := passkeyRig(t)
	before := rg.kvCount()
	const views = 300
	seen := map[string]bool{}
	for range views {
		resp, err := http.Get(rg.base + "/login")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := loginCeremonyRe.FindStringSubmatch(string(body))
		if resp.StatusCode != http.StatusOK || m == nil || m[1] == "" {
			t.Fatalf("the sign-in page offers no passkey sign-in: %d\n%s", resp.StatusCode, body)
		}
		seen[m[1]] = true
	}
	if len(seen) != views {
		t.Fatalf("%d page views got %d distinct challenges", views, len(seen))
	}
	if after := rg.kvCount(); after != before {
		t.Fatalf("attack/login-page-flood: %d page views grew the store from %d to %d entries", views, before, after)
	}
}

// TestSealedPasskeyLoginRefusals posts sealed sign-ins that must not be
// taken: one lifted from another browser, an altered one, and a wrong
// answer, which writes only the address's failure counter.
func TestSealedPasskeyLoginRefusals(t *testing.T) {
	rg := passkeyRig(t)
	victim, attacker := rg.browser(), rg.browser()
	_, page := victim.do("GET", "/login", nil)
	m := loginCeremonyRe.FindStringSubmatch(page)
	if m == nil || m[1] == "" {
		t.Fatalf("the sign-in page offers no passkey sign-in:\n%s", page)
	}
	token := m[1]
	for _, tc := range []struct {
		name    string
		b       *browser
		token   string
		status  int
		message string
	}{
		{"fail/lifted-to-another-browser", attacker, token, http.StatusBadRequest, "expired or was already used"},
		{"fail/altered", victim, token[:len(token)-2] + "AA", http.StatusBadRequest, "expired or was already used"},
		{"fail/wrong-answer", victim, token, http.StatusUnauthorized, "could not sign you in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tc.b.do("POST", "/login/passkey", map[string][]string{"ceremony": {tc.token}, "data": {`{"id":"x"}`}})
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.message) {
				t.Fatalf("POST /login/passkey = %d, want %d with %q:\n%s", resp.StatusCode, tc.status, tc.message, body)
			}
		})
	}
	n, _, err := rg.st.KVUsage(context.Background(), "authn/login-spent/")
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("refused answers spent %d challenges", n)
	}
}

// TestLongUserNameStoresNothing posts failed sign-ins with user names as
// long as the form allows, each different. The failure counters and the
// risk history are keyed by the name, so such a name is refused before
// anything is stored; an ordinary wrong name still counts.
func TestLongUserNameStoresNothing(t *testing.T) {
	rg := passkeyRig(t)
	b := rg.browser()
	before := rg.kvCount()
	for i := range 50 {
		name := strings.Repeat("x", 60<<10) + strings.Repeat("y", i)
		resp, body := b.do("POST", "/login", map[string][]string{"username": {name}, "password": {"guess"}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "at most 256 characters") {
			t.Fatalf("attack/long-user-name: %d, want 400 naming the limit:\n%.300s", resp.StatusCode, body)
		}
	}
	if after := rg.kvCount(); after != before {
		t.Fatalf("attack/long-user-name: 50 refused sign-ins grew the store from %d to %d entries", before, after)
	}
	if resp, _ := b.do("POST", "/login", map[string][]string{"username": {"nobody"}, "password": {"guess"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an ordinary failed sign-in = %d, want 401", resp.StatusCode)
	}
	if rg.kvCount() == before {
		t.Fatal("an ordinary failed sign-in was not counted")
	}
}
