//go:build unix

package gateway

import (
	"bufio"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy/policytest"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

// BenchmarkDecision is the gateway's own work on a request of an
// identity it found a moment ago (a cached lookup, as most requests of
// a browsing session or an API client are), from the route's rule to
// the head going upstream: the identity (a gateway cookie, or a bearer
// token), the decision, and the identity headers with the signed
// assertion, as writeHead writes them. No network and no upstream: the
// part of a proxied request a session or a token adds to one on a route
// with no sign-in, which the loopback benchmarks in internal/app, where
// the network and the upstream's parsing dominate, cannot resolve.
func BenchmarkDecision(b *testing.B) {
	now := time.Now()
	user := store.User{ID: "VIPEGWUBMG7XDMINAMBNE7MZQW", Username: "alice", Email: "alice@example.com"}
	at := now.Unix()
	proofs := []oauth.Proof{{Method: "password", Time: at, AMR: []string{"pwd"}}}
	g, rt := bankGateway(b, Deps{
		Policies: fixedPolicies{policytest.Snapshot(b, memoPolicies)}, Access: (&access.Builder{}).Request,
		Sessions: session.NewManager(nil, session.Config{CookieName: "stepgate", IdleTimeout: time.Hour, Lifetime: time.Hour}, nil),
		Store:    userKV{memKV: &memKV{now: time.Now, m: map[string]store.KVEntry{}}, user: user},
		Tokens: claimsVerifier{&oauth.AccessClaims{Claims: jwt.Claims{ID: "jti-1", Subject: user.ID, Audience: jwt.Audience{"bank"},
			Expiry: jwt.NewNumericDate(now.Add(time.Hour))}, ClientID: "bank", AuthTime: at, ProofTime: at, ACR: "single-factor",
			AMR: []string{"pwd"}, Proofs: proofs}},
	})
	cookie := strings.Repeat("c", gatewayCookieLen)
	entry := &browserEntry{route: rt.name, user: user, memo: &identityMemo{}, sess: &store.Session{ID: "s1", UserID: user.ID,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), Events: access.TokenEvents(proofs)}}
	for _, bc := range []struct{ name, header, value string }{
		{"session", "Cookie", "stepgate_gw=" + cookie},
		{"bearer", "Authorization", "Bearer tok-1"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			r := httptest.NewRequest(http.MethodGet, "http://bank.localhost:8080/accounts", nil)
			r.RemoteAddr = "203.0.113.7:40000"
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
			r.Header.Set(bc.header, bc.value)
			w := httptest.NewRecorder()
			bw := bufio.NewWriterSize(discard{}, 4<<10)
			passed := 0
			allow := func(_ http.ResponseWriter, r *http.Request, id *identity, p string) {
				g.writeIdentity(bw, rt, id, upstreamKey(r.Method, p))
				_ = bw.Flush()
				passed++
			}
			n := 0
			cpu := processCPU()
			for ; b.Loop(); n++ {
				if n%1024 == 0 {
					// The lookup of a browser that keeps browsing is
					// renewed every identityTTL; here it is kept alive.
					g.browsers.put(sha256.Sum256([]byte(cookie)), entry, time.Now())
				}
				g.handle(w, r, rt, "/accounts", allow)
			}
			// CPU time per request: on a shared machine, steadier than
			// ns/op, which counts the time other work holds the cores.
			b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(n), "cpu-ns/op")
			if passed != n {
				b.Fatalf("%d of %d requests passed: status %d, %s", passed, n, w.Code, w.Body)
			}
		})
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
