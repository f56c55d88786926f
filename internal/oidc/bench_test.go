package oidc

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/revoke"
)

// BenchmarkCodeExchange measures token issuance as a client sees it: a
// POST to the token endpoint with client_secret_basic, the code claimed
// once in the store (SQLite, a compare-and-swap write), the user read,
// and an access token and an ID token signed.
func BenchmarkCodeExchange(b *testing.B) {
	tp := newTestProvider(b)
	ctx := context.Background()
	mux := http.NewServeMux()
	tp.Mount(mux)
	auth := "Basic " + basicCredentials(testClientID, testSecret)

	// Codes are single-use, so each iteration needs its own; making them
	// (a grant and a code record each) is not what is measured.
	codes := make([]string, b.N)
	f := &flow{ClientID: testClientID, RedirectURI: testRedirect, Scope: []string{"openid", "profile", "email"}}
	for i := range codes {
		code, err := tp.issueCode(ctx, f, verdict{kind: verdictIssue, auth: tp.authState(f.Scope...)})
		if err != nil {
			b.Fatal(err)
		}
		codes[i] = code
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {testRedirect}}
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("exchange: status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
}

// BenchmarkIntrospect measures checking a valid access token: parse,
// signature, claims, and the two revocation reads (token and grant).
func BenchmarkIntrospect(b *testing.B) {
	tp := newTestProvider(b)
	ctx := context.Background()
	raw := tp.accessToken(b)
	if _, err := tp.VerifyAccessToken(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.VerifyAccessToken(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

func basicCredentials(id, secret string) string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// BenchmarkIntrospectLiveToken measures a resource server introspecting
// the same live token again and again, as RFC 7662 resource servers do:
// a POST over a kept-alive loopback connection, client_secret_basic, the
// continuous access evaluation check wired as the server wires it, and
// the JSON answer read by the client.
func BenchmarkIntrospectLiveToken(b *testing.B) {
	tp := newTestProvider(b)
	tp.Revocations = revoke.New(tp.db, nil, tp.clock.Now)
	raw := tp.accessToken(b)
	mux := http.NewServeMux()
	tp.Mount(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(client.CloseIdleConnections)
	body := url.Values{"token": {raw}}.Encode()
	auth := "Basic " + basicCredentials(testClientID, testSecret)
	want := []byte(`"active":true`)

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(http.MethodPost, srv.URL+pathIntrospect, strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", auth)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			got, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(got, want) {
				b.Errorf("introspection: status %d, %s (%v)", resp.StatusCode, got, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
