package access_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/geoip"
	"github.com/stepgate/stepgate/internal/geoip/geoiptest"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func openGeo(t *testing.T) *geoip.DB {
	t.Helper()
	db, err := geoip.Open(geoiptest.CountryDB(t, map[string]string{"203.0.113.0/24": "DE", "198.51.100.0/24": "FR"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRequest(t *testing.T) {
	t.Parallel()
	geo := openGeo(t)
	proxy := netip.MustParsePrefix("10.0.0.0/8")
	alice := store.User{ID: "u1", Username: "alice", Groups: []string{"staff"}, Roles: []string{"admin"}}
	sess := &store.Session{Events: []store.AuthEvent{
		{Method: "password", Time: now.Add(-5 * time.Minute), AMR: []string{"pwd"}},
		{Method: "webauthn", Time: now.Add(-time.Minute), AMR: []string{"hwk", "user"}, PhishingResistant: true},
	}}
	const windowsUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"

	tests := []struct {
		name        string
		builder     access.Builder
		peer        string
		xff         string
		ua          string
		session     *store.Session
		wantIP      string
		wantCountry string
		wantPlat    string
		wantEvents  int
	}{
		{name: "ok/direct-with-geoip", builder: access.Builder{GeoIP: geo}, peer: "203.0.113.9:5000", ua: windowsUA, session: sess,
			wantIP: "203.0.113.9", wantCountry: "DE", wantPlat: policy.PlatformWindows, wantEvents: 2},
		{name: "ok/no-geoip-country-unknown", peer: "203.0.113.9:5000", wantIP: "203.0.113.9", wantPlat: policy.PlatformUnknown},
		{name: "ok/trusted-proxy-forwards", builder: access.Builder{GeoIP: geo, ClientIP: httpx.ClientIP{Trusted: []netip.Prefix{proxy}}},
			peer: "10.1.2.3:443", xff: "198.51.100.7", wantIP: "198.51.100.7", wantCountry: "FR", wantPlat: policy.PlatformUnknown},
		// An untrusted peer that sends X-Forwarded-For itself must not be
		// able to claim an address in a trusted location or country.
		{name: "fail/spoofed-xff-from-untrusted-peer", builder: access.Builder{GeoIP: geo, ClientIP: httpx.ClientIP{Trusted: []netip.Prefix{proxy}}},
			peer: "203.0.113.9:5000", xff: "10.0.0.1, 198.51.100.7", wantIP: "203.0.113.9", wantCountry: "DE", wantPlat: policy.PlatformUnknown},
		{name: "fail/spoofed-xff-without-trusted-proxies", builder: access.Builder{GeoIP: geo},
			peer: "203.0.113.9:5000", xff: "198.51.100.7", wantIP: "203.0.113.9", wantCountry: "DE", wantPlat: policy.PlatformUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/app", nil)
			r.RemoteAddr = tt.peer
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if tt.ua != "" {
				r.Header.Set("User-Agent", tt.ua)
			}
			got := tt.builder.Request(r, alice, tt.session, "", now)
			if got.IP != netip.MustParseAddr(tt.wantIP) {
				t.Errorf("IP = %v, want %s", got.IP, tt.wantIP)
			}
			if got.Country != tt.wantCountry || got.Platform != tt.wantPlat {
				t.Errorf("country, platform = %q, %q; want %q, %q", got.Country, got.Platform, tt.wantCountry, tt.wantPlat)
			}
			if len(got.Events) != tt.wantEvents {
				t.Errorf("%d events, want %d", len(got.Events), tt.wantEvents)
			}
			want := policy.Subject{ID: "u1", Username: "alice", Groups: []string{"staff"}, Roles: []string{"admin"}}
			if !reflect.DeepEqual(got.Subject, want) || got.ClientApp != policy.ClientBrowser || !got.Now.Equal(now) {
				t.Errorf("subject %+v, client app %q, now %v", got.Subject, got.ClientApp, got.Now)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the built request does not validate: %v", err)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	if got := access.Events(nil); got != nil {
		t.Errorf("Events(nil) = %v, want nil", got)
	}
	in := []store.AuthEvent{
		{Method: "password", Time: now, AMR: []string{"pwd"}},
		{Method: "webauthn", Time: now, AMR: []string{"hwk", "user"}, PhishingResistant: true, CredentialID: "c1"},
		{Method: "webauthn", Time: now, AMR: []string{"hwk"}, PhishingResistant: true},
	}
	want := []strength.Event{
		{Method: "password", Time: now, AMR: []string{"pwd"}},
		{Method: "webauthn", Time: now, AMR: []string{"hwk", "user"}, PhishingResistant: true, UserVerified: true},
		{Method: "webauthn", Time: now, AMR: []string{"hwk"}, PhishingResistant: true},
	}
	if got := access.Events(in); !reflect.DeepEqual(got, want) {
		t.Errorf("Events =\n%+v\nwant\n%+v", got, want)
	}
	// A user-verified passkey alone is phishing-resistant MFA; an event
	// without the "user" AMR is not.
	set, err := strength.NewSet()
	if err != nil {
		t.Fatal(err)
	}
	if !set.Satisfied(strength.PhishingResistant, access.Events(in[1:2]), now, 0) {
		t.Error("a user-verified passkey does not satisfy phishing-resistant")
	}
	if set.Satisfied(strength.PhishingResistant, access.Events(in[2:3]), now, 0) {
		t.Error("a passkey without user verification satisfies phishing-resistant")
	}
}

type fakeUsers map[string]store.User

func (f fakeUsers) GetUserByName(_ context.Context, name string) (store.User, error) {
	if u, ok := f[name]; ok {
		return u, nil
	}
	return store.User{}, store.ErrNotFound
}

func TestWhatIf(t *testing.T) {
	t.Parallel()
	b := &access.Builder{GeoIP: openGeo(t)}
	users := fakeUsers{"alice": {ID: "u1", Username: "alice", Groups: []string{"finance"}}}
	tests := []struct {
		name        string
		in          policy.WhatIf
		wantErr     error
		wantCountry string
	}{
		{name: "ok/country-from-geoip", in: policy.WhatIf{User: "alice", App: "payroll", IP: "203.0.113.5"}, wantCountry: "DE"},
		{name: "ok/country-given-wins", in: policy.WhatIf{User: "alice", App: "payroll", IP: "203.0.113.5", Country: "US"}, wantCountry: "US"},
		{name: "ok/client", in: policy.WhatIf{Client: "batch", App: "payroll"}},
		{name: "fail/unknown-user", in: policy.WhatIf{User: "mallory"}, wantErr: access.ErrUnknownUser},
		{name: "fail/no-subject", in: policy.WhatIf{App: "payroll"}, wantErr: access.ErrInvalidWhatIf},
		{name: "fail/user-and-client", in: policy.WhatIf{User: "alice", Client: "batch"}, wantErr: access.ErrInvalidWhatIf},
		{name: "fail/bad-risk", in: policy.WhatIf{User: "alice", SignInRisk: "mediun"}, wantErr: access.ErrInvalidWhatIf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _, err := b.WhatIf(context.Background(), users, &tt.in, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if req.Country != tt.wantCountry {
				t.Errorf("country = %q, want %q", req.Country, tt.wantCountry)
			}
			if tt.in.User != "" && !reflect.DeepEqual(req.Subject.Groups, []string{"finance"}) {
				t.Errorf("groups = %q; the user's groups were not resolved", req.Subject.Groups)
			}
		})
	}
}

func BenchmarkRequest(b *testing.B) {
	bld := &access.Builder{}
	r := httptest.NewRequest("GET", "/app", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)")
	u := store.User{ID: "u1", Username: "alice", Groups: []string{"staff"}}
	s := &store.Session{Events: []store.AuthEvent{{Method: "password", Time: now, AMR: []string{"pwd"}}}}
	b.ReportAllocs()
	for b.Loop() {
		_ = bld.Request(r, u, s, "payroll", now)
	}
}

// TestRegistrationOnlyProofsNeverCount: a session holding a recovery
// code or a temporary access pass on top of a password meets no strength
// beyond the password's, and such a proof does not remediate sign-in
// risk either.
func TestRegistrationOnlyProofsNeverCount(t *testing.T) {
	now := time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)
	set, err := strength.NewSet()
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{strength.RecoveryCode, tap.Method} {
		evs := []store.AuthEvent{
			{Method: "password", Time: now, AMR: []string{"pwd"}, Risk: "medium"},
			{Method: method, Time: now, AMR: []string{"otp"}},
		}
		got := access.Events(evs)
		if len(got) != 1 || got[0].Method != "password" {
			t.Errorf("fail/%s-counted: events %+v", method, got)
		}
		if set.Satisfied(strength.MFA, got, now, 0) {
			t.Errorf("fail/%s-meets-mfa", method)
		}
		if access.SignInRisk(evs) != "medium" {
			t.Errorf("fail/%s-remediates-risk", method)
		}
	}
}
