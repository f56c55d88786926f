package gateway

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
)

// es256Signer signs assertions as Stepgate's key ring does: ES256, with
// a kid and the assertion's typ, so they have their real size.
type es256Signer struct{ signer jose.Signer }

func newES256Signer(b *testing.B) *es256Signer {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "bokkIED5LGSCYO4f"}},
		(&jose.SignerOptions{}).WithType("stepgate-assertion+jwt"))
	if err != nil {
		b.Fatal(err)
	}
	return &es256Signer{signer: s}
}

func (s *es256Signer) SignAssertion(claims any) (string, error) {
	return jwt.Signed(s.signer).Claims(claims).Serialize()
}

// bankGateway is a gateway with deps and one route, bank, that signs
// assertions as Stepgate does: what the benchmarks measure.
func bankGateway(b *testing.B, deps Deps) (*Gateway, *route) {
	b.Helper()
	deps.Issuer, deps.Signer, deps.Log, deps.Now = "http://127.0.0.1:8080", newES256Signer(b), slog.New(slog.DiscardHandler), time.Now
	deps.Options = Options{AssertionLifetime: 30 * time.Second, Routes: []Route{
		{Name: "bank", From: "http://bank.localhost:8080", To: "http://127.0.0.1:9001"},
	}}
	g, err := New(deps)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	return g, g.routes[0]
}

// benchIdentity is a browser user's identity, signed in with a password.
func benchIdentity() *identity {
	return &identity{user: store.User{ID: "VIPEGWUBMG7XDMINAMBNE7MZQW", Username: "alice", Email: "alice@example.com"},
		token: &oauth.AccessClaims{Claims: jwt.Claims{ID: "jti-1", Subject: "VIPEGWUBMG7XDMINAMBNE7MZQW"}, ACR: "single-factor",
			AMR: []string{"pwd"}, AuthTime: time.Now().Unix()}, memo: &identityMemo{}}
}

// identityHeads are the heads the gateway writes upstream for one GET,
// without identity (a route with no sign-in) and with a browser user's
// identity headers and assertion.
func identityHeads(b *testing.B) (anonymous, identified []byte) {
	b.Helper()
	g, rt := bankGateway(b, Deps{})
	alice := benchIdentity()
	head := func(id *identity) []byte {
		r := httptest.NewRequest(http.MethodGet, "http://bank.localhost:8080/", nil)
		r.Header.Set("User-Agent", "Go-http-client/1.1")
		o := &outgoing{g: g, r: r, rt: rt, host: "127.0.0.1:9001", id: id, path: "/"}
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		if err := o.writeHead(bw); err != nil {
			b.Fatal(err)
		}
		_ = bw.Flush()
		return buf.Bytes()
	}
	return head(nil), head(alice)
}

// BenchmarkUpstreamReadsIdentity is what an upstream's own HTTP server
// (Go's net/http here) spends reading the head the gateway sends it:
// without identity, and with the identity headers and the assertion.
// The difference is what every application behind the gateway pays for
// being told who its user is, whatever the gateway's own cost.
func BenchmarkUpstreamReadsIdentity(b *testing.B) {
	anonymous, identified := identityHeads(b)
	for _, bc := range []struct {
		name string
		head []byte
	}{{"anonymous", anonymous}, {"identified", identified}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			src := bytes.NewReader(bc.head)
			br := bufio.NewReaderSize(src, 4<<10)
			for b.Loop() {
				src.Reset(bc.head)
				br.Reset(src)
				if _, err := http.ReadRequest(br); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(bc.head)), "head-bytes")
		})
	}
}

// BenchmarkWriteIdentity is the gateway's own cost of the same heads:
// writing one upstream, with the identity worked out (and the assertion
// signed) once per identity lookup, as a cached lookup serves it.
func BenchmarkWriteIdentity(b *testing.B) {
	g, rt := bankGateway(b, Deps{})
	alice := benchIdentity()
	for _, bc := range []struct {
		name string
		id   *identity
	}{{"anonymous", nil}, {"identified", alice}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			r := httptest.NewRequest(http.MethodGet, "http://bank.localhost:8080/", nil)
			r.Header.Set("User-Agent", "Go-http-client/1.1")
			o := &outgoing{g: g, r: r, rt: rt, host: "127.0.0.1:9001", id: bc.id, path: "/"}
			bw := bufio.NewWriterSize(discard{}, 4<<10)
			for b.Loop() {
				if err := o.writeHead(bw); err != nil {
					b.Fatal(err)
				}
				_ = bw.Flush()
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
