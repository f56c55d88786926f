package gateway

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
)

// recordingSigner "signs" by numbering: it returns the claims' JSON
// with a serial, so tests see what would have been signed and how often.
type recordingSigner struct {
	mu     sync.Mutex // guards signed
	signed []assertionClaims
}

func (s *recordingSigner) SignAssertion(claims any) (string, error) {
	b, _ := json.Marshal(claims)
	var c assertionClaims
	_ = json.Unmarshal(b, &c)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signed = append(s.signed, c)
	return string(b) + "#" + string(rune('0'+len(s.signed))), nil
}

func (s *recordingSigner) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.signed)
}

func (s *recordingSigner) last() assertionClaims {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signed[len(s.signed)-1]
}

// TestAssertionBoundToRequest: the assertion names the route's upstream
// as audience (or the configured one), the request it authorizes and
// the route's lifetime; the cache never hands one request's assertion to
// another, and re-signs before one grows old.
func TestAssertionBoundToRequest(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	signer := &recordingSigner{}
	g, err := New(Deps{
		Issuer: "https://id.example", Signer: signer, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now },
		Options: Options{AssertionLifetime: 30 * time.Second, Routes: []Route{
			{Name: "bank", From: "https://bank.example", To: "http://Bank.Internal:9001/base"},
			{Name: "payroll", From: "https://payroll.example", To: "http://127.0.0.1:9002", AssertionAudience: "payroll-api", AssertionLifetime: 10 * time.Second},
			{Name: "wiki", From: "https://wiki.example"}, // forward-auth only
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	byName := func(name string) *route {
		for _, rt := range g.routes {
			if rt.name == name {
				return rt
			}
		}
		t.Fatalf("no route %s", name)
		return nil
	}
	bank, payroll, wiki := byName("bank"), byName("payroll"), byName("wiki")
	alice := &identity{user: store.User{ID: "u1", Username: "alice"}, token: &oauth.AccessClaims{Claims: jwt.Claims{ID: "jti-1", Subject: "u1"}, ACR: "mfa"}}
	sign := func(rt *route, req requestTarget) string {
		t.Helper()
		tok, _, err := g.assertion(rt, alice, g.facts(rt, alice, g.Now()), req, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	get := sign(bank, bank.target(upstreamKey("GET", "/accounts")))
	c := signer.last()
	if c.Method != "GET" || c.URL != "http://bank.internal:9001/base/accounts" || len(c.Audience) != 1 || c.Audience[0] != "http://bank.internal:9001" {
		t.Fatalf("bank assertion htm %q htu %q aud %v", c.Method, c.URL, c.Audience)
	}
	if life := c.Expiry.Time().Sub(c.IssuedAt.Time()); life != 30*time.Second {
		t.Fatalf("bank assertion lives %s, want 30s", life)
	}
	if again := sign(bank, bank.target(upstreamKey("GET", "/accounts"))); again != get || signer.count() != 1 {
		t.Fatalf("the same request re-signed (%d signatures)", signer.count())
	}
	for _, req := range []requestTarget{bank.target(upstreamKey("POST", "/accounts")), bank.target(upstreamKey("GET", "/transfers")), bank.target(upstreamKey("GET", "/accounts/"))} {
		if tok := sign(bank, req); tok == get {
			t.Fatalf("%s %s got the assertion of GET /accounts", req.method, req.url)
		}
		if c := signer.last(); c.Method != req.method || c.URL != req.url {
			t.Fatalf("%s %s: signed htm %q htu %q", req.method, req.url, c.Method, c.URL)
		}
	}

	// A request that changes something gets an assertion of its own each
	// time, with its own jti, for the upstream to accept once.
	post := bank.target(upstreamKey("POST", "/transfers"))
	first, jti := sign(bank, post), signer.last().ID
	if second := sign(bank, post); second == first || signer.last().ID == jti || jti == "" {
		t.Fatalf("two POST /transfers share an assertion or a jti (%q)", jti)
	}

	sign(payroll, payroll.target(upstreamKey("GET", "/accounts")))
	c = signer.last()
	if len(c.Audience) != 1 || c.Audience[0] != "payroll-api" || c.Expiry.Time().Sub(c.IssuedAt.Time()) != 10*time.Second {
		t.Fatalf("payroll assertion aud %v, life %s; want payroll-api and 10s", c.Audience, c.Expiry.Time().Sub(c.IssuedAt.Time()))
	}

	// Forward-auth: the original request on the route's public origin.
	sign(wiki, wiki.target(requestKey{method: "DELETE", path: "/pages/a b", public: true}))
	c = signer.last()
	if c.Audience[0] != "https://wiki.example" || c.URL != "https://wiki.example/pages/a%20b" || c.Method != "DELETE" {
		t.Fatalf("forward-auth assertion aud %v htm %q htu %q", c.Audience, c.Method, c.URL)
	}

	// Reused for half its life at most.
	n := signer.count()
	now = now.Add(16 * time.Second)
	if sign(bank, bank.target(upstreamKey("GET", "/accounts"))) == get || signer.count() != n+1 {
		t.Fatal("an assertion past half its life was reused")
	}
}

// TestIdentityMemo: the identity headers reused from a cached lookup
// are that identity's alone, on the route they were made for, for the
// request and contexts they name, and no longer than the assertion
// cache allows; a request that changes something still gets an
// assertion of its own.
func TestIdentityMemo(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	signer := &recordingSigner{}
	g, err := New(Deps{
		Issuer: "https://id.example", Signer: signer, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now },
		Options: Options{AssertionLifetime: 30 * time.Second, Routes: []Route{
			{Name: "bank", From: "https://bank.example", To: "http://127.0.0.1:9001"},
			{Name: "payroll", From: "https://payroll.example", To: "http://127.0.0.1:9001", AssertionAudience: "payroll-api"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	bank, payroll := g.routes[0], g.routes[1]
	who := func(id, name string) *identity {
		return &identity{user: store.User{ID: id, Username: name, Groups: []string{name + "-team"}},
			token: &oauth.AccessClaims{Claims: jwt.Claims{ID: "jti-" + id, Subject: id}, ACR: "mfa", AMR: []string{"pwd", "otp"}},
			memo:  &identityMemo{}}
	}
	alice, bob := who("u1", "alice"), who("u2", "bob")
	headers := func(rt *route, id *identity, method string) map[string]string {
		t.Helper()
		h := map[string]string{}
		g.identityHeaders(rt, id, upstreamKey(method, "/accounts"), func(k, v string) { h[k] = v })
		return h
	}

	first := headers(bank, alice, "GET")
	if again := headers(bank, alice, "GET"); again[headerAssertion] != first[headerAssertion] || signer.count() != 1 {
		t.Fatalf("a repeated read re-signed (%d signatures)", signer.count())
	}
	if first[headerUser] != "alice" || first[headerGroups] != "alice-team" || first[headerAmr] != "pwd otp" {
		t.Fatalf("alice's headers: %v", first)
	}

	// Reads of another path in between: each keeps its own assertion,
	// and going back serves the first one again, unsigned.
	assertionFor := func(k requestKey) string {
		t.Helper()
		var tok string
		g.identityHeaders(bank, alice, k, func(key, v string) {
			if key == headerAssertion {
				tok = v
			}
		})
		return tok
	}
	signed := signer.count()
	other := assertionFor(upstreamKey("GET", "/transfers"))
	if c := signer.last(); other == first[headerAssertion] || c.URL != "http://127.0.0.1:9001/transfers" || signer.count() != signed+1 {
		t.Fatalf("GET /transfers got htu %q (%d signatures)", c.URL, signer.count()-signed)
	}
	if back := assertionFor(upstreamKey("GET", "/accounts")); back != first[headerAssertion] || signer.count() != signed+1 {
		t.Fatalf("back to GET /accounts: a new assertion (%d signatures)", signer.count()-signed)
	}
	if again := assertionFor(upstreamKey("GET", "/transfers")); again != other || signer.count() != signed+1 {
		t.Fatalf("GET /transfers again: a new assertion (%d signatures)", signer.count()-signed)
	}
	// The same path as the proxy in front received it (forward-auth)
	// is another request: the public URL, never the upstream's.
	if pub := assertionFor(requestKey{method: "GET", path: "/accounts", public: true}); pub == first[headerAssertion] || signer.last().URL != "https://bank.example/accounts" {
		t.Fatalf("forward-auth's GET /accounts got htu %q", signer.last().URL)
	}

	// Another user's identity, same route and request: never alice's.
	b := headers(bank, bob, "GET")
	if b[headerAssertion] == first[headerAssertion] || b[headerUser] != "bob" || b[headerGroups] != "bob-team" || signer.last().Subject != "u2" {
		t.Fatalf("bob got %v (signed sub %q)", b, signer.last().Subject)
	}

	// Another route through the same memo: its own audience.
	p := headers(payroll, alice, "GET")
	if c := signer.last(); p[headerAssertion] == first[headerAssertion] || c.Audience[0] != "payroll-api" {
		t.Fatalf("payroll got bank's assertion, or audience %v", c.Audience)
	}

	// The decision's contexts change: a new assertion that names them.
	alice.acrs = []string{"c2"}
	if h := headers(bank, alice, "GET"); h[headerAssertion] == first[headerAssertion] || !slices.Equal(signer.last().ACRs, []string{"c2"}) {
		t.Fatalf("an assertion without c2 was reused for a decision that established it (signed acrs %v)", signer.last().ACRs)
	}
	alice.acrs = nil

	// A write: its own assertion each time.
	n := signer.count()
	post1 := headers(bank, alice, "POST")[headerAssertion]
	if post2 := headers(bank, alice, "POST")[headerAssertion]; post1 == post2 || signer.count() != n+2 {
		t.Fatal("two POSTs shared an assertion")
	}

	// Past half its life: signed again.
	n = signer.count()
	now = now.Add(16 * time.Second)
	if headers(bank, alice, "GET")[headerAssertion] == first[headerAssertion] || signer.count() != n+1 {
		t.Fatal("an assertion past half its life was reused from the memo")
	}
}

// TestIdentityMemoRace: requests of one browser on many connections
// share its memo, whose last assertion is read without a lock. Each
// must still get the assertion of its own request, never the one
// another connection just stored (run with -race).
func TestIdentityMemoRace(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g, err := New(Deps{
		Issuer: "https://id.example", Signer: &recordingSigner{}, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now },
		Options: Options{AssertionLifetime: 30 * time.Second, Routes: []Route{
			{Name: "bank", From: "https://bank.example", To: "http://127.0.0.1:9001"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	bank := g.routes[0]
	alice := &identity{user: store.User{ID: "u1", Username: "alice"},
		token: &oauth.AccessClaims{Claims: jwt.Claims{ID: "jti-u1", Subject: "u1"}, ACR: "mfa"}, memo: &identityMemo{}}
	paths := []string{"/a", "/b", "/c"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				p := paths[(w+i)%len(paths)]
				var tok string
				g.identityHeaders(bank, alice, upstreamKey("GET", p), func(k, v string) {
					if k == headerAssertion {
						tok = v
					}
				})
				var c assertionClaims
				body, _, _ := strings.Cut(tok, "#")
				if err := json.Unmarshal([]byte(body), &c); err != nil || c.URL != "http://127.0.0.1:9001"+p {
					t.Errorf("GET %s got an assertion for %q (%v)", p, c.URL, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
