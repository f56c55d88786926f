package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Device clients of the unit tests: a public command line, a
// confidential TV app, and the web app, which lacks the grant.
const (
	cliClientID = "cli"
	tvClientID  = "tv"
	tvSecret    = "tv-secret-tv-secret-tv-secret-tv-secret-0"
)

// deviceProvider is a test provider whose clients include device
// clients, with its protocol endpoints mounted.
type deviceProvider struct {
	*testProvider
	mux *http.ServeMux
}

func newDeviceProvider(t *testing.T, opts DeviceOptions) *deviceProvider {
	t.Helper()
	tp := newTestProvider(t)
	clients, err := NewClients(tp.db, ClientsOptions{Declared: []ClientOptions{
		{ID: testClientID, Name: "Web app", Secret: testSecret, AuthMethod: AuthSecretBasic, RedirectURIs: []string{testRedirect},
			GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken}},
		{ID: cliClientID, Name: "Command line", Public: true, AuthMethod: AuthNone, GrantTypes: []string{GrantDeviceCode, GrantRefreshToken}},
		{ID: tvClientID, Name: "TV", Secret: tvSecret, AuthMethod: AuthSecretBasic, GrantTypes: []string{GrantDeviceCode}},
	}, Now: tp.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tp.Clients = clients
	snap, probs := policy.Compile(nil)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	tp.Policies = policy.NewEngine(snap)
	tp.Device = deviceDefaults(opts, tp.db, tp.clock.Now)
	mux := http.NewServeMux()
	tp.Mount(mux)
	return &deviceProvider{testProvider: tp, mux: mux}
}

// oauthReply is a JSON answer of an endpoint.
type oauthReply struct {
	status int
	header http.Header
	body   map[string]any
}

func (r oauthReply) str(k string) string { s, _ := r.body[k].(string); return s }

func (r oauthReply) num(k string) int64 { n, _ := r.body[k].(float64); return int64(n) }

// post posts form to path as client (its secret when it has one).
func (dp *deviceProvider) post(t *testing.T, path, client string, form url.Values) oauthReply {
	t.Helper()
	return dp.postFrom(t, "192.0.2.1:1234", path, client, form)
}

// postFrom is post from the client address remote.
func (dp *deviceProvider) postFrom(t *testing.T, remote, path, client string, form url.Values) oauthReply {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	secret := map[string]string{tvClientID: tvSecret, testClientID: testSecret}[client]
	if secret == "" {
		form.Set("client_id", client)
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = remote
	if secret != "" {
		req.SetBasicAuth(client, secret)
	}
	rec := httptest.NewRecorder()
	dp.mux.ServeHTTP(rec, req)
	out := oauthReply{status: rec.Code, header: rec.Header()}
	if err := json.Unmarshal(rec.Body.Bytes(), &out.body); err != nil {
		t.Fatalf("POST %s: status %d, body %q: %v", path, rec.Code, rec.Body.String(), err)
	}
	return out
}

// start asks for a device code as client.
func (dp *deviceProvider) start(t *testing.T, client, scope string) (deviceCode, userCode string) {
	t.Helper()
	r := dp.post(t, pathDeviceAuthorization, client, url.Values{"scope": {scope}})
	if r.status != http.StatusOK {
		t.Fatalf("device authorization for %s: %d %v", client, r.status, r.body)
	}
	return r.str("device_code"), r.str("user_code")
}

// poll polls the token endpoint as client.
func (dp *deviceProvider) poll(t *testing.T, client, deviceCode string) oauthReply {
	t.Helper()
	return dp.post(t, pathToken, client, url.Values{"grant_type": {GrantDeviceCode}, "device_code": {deviceCode}})
}

// approve approves the device authorization of userCode with a to-day
// password sign-in's proofs, as the device page does once the policies
// allow it.
func (dp *deviceProvider) approve(t *testing.T, userCode string) {
	t.Helper()
	ctx := context.Background()
	d, err := dp.findDevice(ctx, dp.user.ID, userCode)
	if err != nil {
		t.Fatal(err)
	}
	a := dp.authState(d.rec.Scope...)
	a.Nonce = ""
	a.Proofs = []store.AuthEvent{{Method: "password", Time: dp.clock.Now().Add(-time.Minute), AMR: []string{"pwd"}}}
	if err := dp.answer(ctx, d, deviceStatusApproved, "", &a); err != nil {
		t.Fatal(err)
	}
}

func wantOAuthError(t *testing.T, r oauthReply, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %v, want %d %s", r.status, r.body, status, code)
	}
}

var userCodeShape = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// TestDeviceAuthorizationResponse: discovery names the endpoint and the
// grant; the response has every field of RFC 8628 3.2, a user code of
// the documented shape, and the configured lifetime and interval.
func TestDeviceAuthorizationResponse(t *testing.T) {
	t.Parallel()
	dp := newDeviceProvider(t, DeviceOptions{Lifetime: 7 * time.Minute})
	md := dp.Metadata()
	if md.DeviceAuthorizationEndpoint != testIssuer+"/oauth2/device_authorization" || !strings.Contains(strings.Join(md.GrantTypesSupported, " "), GrantDeviceCode) {
		t.Fatalf("discovery: endpoint %q, grants %v", md.DeviceAuthorizationEndpoint, md.GrantTypesSupported)
	}
	for _, client := range []string{cliClientID, tvClientID} {
		r := dp.post(t, pathDeviceAuthorization, client, url.Values{"scope": {"openid offline_access"}})
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %v", client, r.status, r.body)
		}
		uc := r.str("user_code")
		switch {
		case len(r.str("device_code")) < 43:
			t.Errorf("device_code %q is short", r.str("device_code"))
		case !userCodeShape.MatchString(uc):
			t.Errorf("user_code %q is not XXXX-XXXX of the consonant alphabet", uc)
		case r.str("verification_uri") != testIssuer+"/device":
			t.Errorf("verification_uri %q", r.str("verification_uri"))
		case r.str("verification_uri_complete") != testIssuer+"/device?user_code="+uc:
			t.Errorf("verification_uri_complete %q", r.str("verification_uri_complete"))
		case r.num("expires_in") != 420 || r.num("interval") != 5:
			t.Errorf("expires_in %d, interval %d; want 420 and 5", r.num("expires_in"), r.num("interval"))
		case r.header.Get("Cache-Control") != "no-store":
			t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
		}
	}
}

// TestDeviceCodesAreStoredHashed: a read of the store yields neither
// the device code (which polls for tokens) nor the user code.
func TestDeviceCodesAreStoredHashed(t *testing.T) {
	t.Parallel()
	dp := newDeviceProvider(t, DeviceOptions{})
	deviceCode, userCode := dp.start(t, cliClientID, "openid")
	plain, _ := NormalizeUserCode(userCode)
	ctx := context.Background()
	recs, err := devices.List(ctx, dp.db)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := userCodes.List(ctx, dp.db)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || len(idx) != 1 {
		t.Fatalf("%d device records, %d user code records; want one each", len(recs), len(idx))
	}
	for _, e := range []store.KVEntry{recs[0].Entry, idx[0].Entry} {
		for _, secret := range []string{deviceCode, plain, userCode} {
			if strings.Contains(e.Key, secret) || strings.Contains(string(e.Value), secret) {
				t.Errorf("entry %s holds a code in clear: %s", e.Key, e.Value)
			}
		}
	}
}

// TestDeviceTokenErrors performs every RFC 8628 3.5 error path and the
// client checks of the token endpoint.
func TestDeviceTokenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, dp *deviceProvider)
	}{
		{"fail/pending", func(t *testing.T, dp *deviceProvider) {
			dc, _ := dp.start(t, cliClientID, "openid")
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "authorization_pending")
		}},
		{"fail/slow-down-then-interval-grows", func(t *testing.T, dp *deviceProvider) {
			dc, _ := dp.start(t, cliClientID, "openid")
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "authorization_pending")
			dp.clock.Add(time.Second)
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "slow_down")
			// The interval is now 10s: 6s later is still too fast.
			dp.clock.Add(6 * time.Second)
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "slow_down")
			dp.clock.Add(16 * time.Second)
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "authorization_pending")
		}},
		{"fail/denied", func(t *testing.T, dp *deviceProvider) {
			dc, uc := dp.start(t, cliClientID, "openid")
			d, err := dp.findDevice(context.Background(), dp.user.ID, uc)
			if err != nil {
				t.Fatal(err)
			}
			if err := dp.answer(context.Background(), d, deviceStatusDenied, "device-denied-by-user", nil); err != nil {
				t.Fatal(err)
			}
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "access_denied")
		}},
		{"fail/expired", func(t *testing.T, dp *deviceProvider) {
			dc, uc := dp.start(t, cliClientID, "openid")
			dp.clock.Add(10*time.Minute + time.Second)
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "expired_token")
			if _, err := dp.findDevice(context.Background(), dp.user.ID, uc); !errors.Is(err, oauth.ErrDeviceExpired) {
				t.Fatalf("an expired user code: %v, want ErrDeviceExpired", err)
			}
		}},
		{"fail/approved-after-expiry-is-expired", func(t *testing.T, dp *deviceProvider) {
			dc, uc := dp.start(t, cliClientID, "openid")
			dp.approve(t, uc)
			dp.clock.Add(10*time.Minute + time.Second)
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "expired_token")
		}},
		{"fail/unknown-code", func(t *testing.T, dp *deviceProvider) {
			wantOAuthError(t, dp.poll(t, cliClientID, "no-such-device-code"), http.StatusBadRequest, "invalid_grant")
		}},
		{"fail/no-code", func(t *testing.T, dp *deviceProvider) {
			wantOAuthError(t, dp.poll(t, cliClientID, ""), http.StatusBadRequest, "invalid_request")
		}},
		{"fail/reuse-revokes-the-first-tokens", func(t *testing.T, dp *deviceProvider) {
			dc, uc := dp.start(t, cliClientID, "openid offline_access")
			dp.approve(t, uc)
			first := dp.poll(t, cliClientID, dc)
			if first.status != http.StatusOK || first.str("access_token") == "" || first.str("refresh_token") == "" {
				t.Fatalf("redemption: %d %v", first.status, first.body)
			}
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "invalid_grant")
			if _, err := dp.VerifyAccessToken(context.Background(), first.str("access_token")); err == nil {
				t.Fatal("the tokens of a reused device code still work")
			}
		}},
		{"fail/code-of-another-client", func(t *testing.T, dp *deviceProvider) {
			dc, uc := dp.start(t, cliClientID, "openid")
			dp.approve(t, uc)
			wantOAuthError(t, dp.poll(t, tvClientID, dc), http.StatusBadRequest, "invalid_grant")
			// Burnt: the device it was made for is told to start again.
			wantOAuthError(t, dp.poll(t, cliClientID, dc), http.StatusBadRequest, "access_denied")
		}},
		{"fail/grant-not-allowed", func(t *testing.T, dp *deviceProvider) {
			wantOAuthError(t, dp.post(t, pathDeviceAuthorization, testClientID, nil), http.StatusBadRequest, "unauthorized_client")
			dc, _ := dp.start(t, cliClientID, "openid")
			wantOAuthError(t, dp.poll(t, testClientID, dc), http.StatusBadRequest, "unauthorized_client")
		}},
		{"fail/wrong-secret", func(t *testing.T, dp *deviceProvider) {
			req := httptest.NewRequest(http.MethodPost, pathDeviceAuthorization, strings.NewReader("scope=openid"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(tvClientID, "guess-guess-guess-guess-guess-guess-00")
			rec := httptest.NewRecorder()
			dp.mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "invalid_client") {
				t.Fatalf("wrong secret: %d %s", rec.Code, rec.Body.String())
			}
		}},
		{"fail/confidential-client-as-public", func(t *testing.T, dp *deviceProvider) {
			// The TV app's id without its secret: refused, never taken for
			// a public client.
			req := httptest.NewRequest(http.MethodPost, pathDeviceAuthorization, strings.NewReader("client_id="+tvClientID))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			dp.mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "invalid_client") {
				t.Fatalf("confidential client without a secret: %d %s", rec.Code, rec.Body.String())
			}
		}},
		{"ok/repeated-scopes-stored-once", func(t *testing.T, dp *deviceProvider) {
			_, uc := dp.start(t, cliClientID, strings.Repeat("openid profile ", 2000))
			d, err := dp.findDevice(context.Background(), dp.user.ID, uc)
			if err != nil || strings.Join(d.rec.Scope, " ") != "openid profile" {
				t.Fatalf("stored scopes %v (%v), want openid and profile once", d.rec.Scope, err)
			}
		}},
		{"fail/unknown-scope", func(t *testing.T, dp *deviceProvider) {
			r := dp.post(t, pathDeviceAuthorization, cliClientID, url.Values{"scope": {"openid stepgate:admin"}})
			wantOAuthError(t, r, http.StatusBadRequest, "invalid_scope")
		}},
		{"ok/tokens-carry-the-proofs", func(t *testing.T, dp *deviceProvider) {
			dc, uc := dp.start(t, tvClientID, "openid profile")
			dp.approve(t, uc)
			r := dp.poll(t, tvClientID, dc)
			if r.status != http.StatusOK || r.str("id_token") == "" || r.str("refresh_token") != "" {
				t.Fatalf("redemption: %d %v (want an ID token, and no refresh token without offline_access)", r.status, r.body)
			}
			c, err := dp.VerifyAccessToken(context.Background(), r.str("access_token"))
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != dp.user.ID || c.ClientID != tvClientID || len(c.Proofs) != 1 || c.Proofs[0].Method != "password" || c.ACR != "single-factor" {
				t.Fatalf("claims %+v: want alice's token for tv with the password proof", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newDeviceProvider(t, DeviceOptions{}))
		})
	}
}

// TestDeviceQuota: device codes are made by anyone with a client id, so
// their number is bounded; past it a client hears slow_down with HTTP
// 429, and room comes back as codes expire.
func TestDeviceQuota(t *testing.T) {
	t.Parallel()
	dp := newDeviceProvider(t, DeviceOptions{MaxPending: 3})
	for range 3 {
		dp.start(t, cliClientID, "openid")
	}
	r := dp.post(t, pathDeviceAuthorization, cliClientID, url.Values{"scope": {"openid"}})
	wantOAuthError(t, r, http.StatusTooManyRequests, "slow_down")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After on a full quota")
	}
	if n, _, err := dp.db.KVUsage(context.Background(), devices.Prefix()); err != nil || n != 3 {
		t.Fatalf("%d device records (%v), want 3: a refused one must leave nothing behind", n, err)
	}
	dp.clock.Add(10*time.Minute + deviceGrace + time.Second)
	dp.start(t, cliClientID, "openid")
}

// TestDevicePerAddress: one client address (an IPv6 /64 counts as one)
// starts at most PerAddress device authorizations per lifetime; another
// address is not held back; a new window admits the address again; and a
// flood from many addresses against a full quota stores no more
// counters than device authorizations.
func TestDevicePerAddress(t *testing.T) {
	t.Parallel()
	dp := newDeviceProvider(t, DeviceOptions{PerAddress: 3, MaxPending: 5})
	start := func(remote string) oauthReply {
		return dp.postFrom(t, remote, pathDeviceAuthorization, cliClientID, url.Values{"scope": {"openid"}})
	}
	for i, remote := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::2]:1", "[2001:db8:1:2:ffff::3]:1"} {
		if r := start(remote); r.status != http.StatusOK {
			t.Fatalf("start %d: %d %v", i, r.status, r.body)
		}
	}
	r := start("[2001:db8:1:2::9]:1")
	wantOAuthError(t, r, http.StatusTooManyRequests, "slow_down")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After past the per-address limit")
	}
	if r := start("[2001:db8:1:3::1]:1"); r.status != http.StatusOK {
		t.Fatalf("another /64: %d %v", r.status, r.body)
	}
	dp.clock.Add(10*time.Minute + deviceGrace + time.Second)
	if r := start("[2001:db8:1:2::1]:1"); r.status != http.StatusOK {
		t.Fatalf("the next window: %d %v", r.status, r.body)
	}
	for i := range 20 {
		start(fmt.Sprintf("198.51.100.%d:1", i+1))
	}
	ctx := context.Background()
	counters, _, err := dp.db.KVUsage(ctx, kvspace.OIDCDeviceRate.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	records, _, err := dp.db.KVUsage(ctx, devices.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	if records != 5 || counters != records {
		t.Fatalf("%d device records and %d address counters after a flood from 20 addresses; want 5 records and no counter without one", records, counters)
	}
}

// TestDeviceBurstOfPolls: many polls at the same instant, as from a
// client ignoring the interval on several connections, get one
// authorization_pending between them; the rest slow_down.
func TestDeviceBurstOfPolls(t *testing.T) {
	t.Parallel()
	dp := newDeviceProvider(t, DeviceOptions{})
	dc, _ := dp.start(t, cliClientID, "openid")
	counts := pollBurst(t, dp, dc, 12)
	if counts["authorization_pending"] != 1 || counts["slow_down"] != 11 {
		t.Fatalf("outcomes %v; want one authorization_pending and 11 slow_down", counts)
	}
}

// TestDeviceRedeemedOnce: parallel polls of an approved device code get
// tokens once.
func TestDeviceRedeemedOnce(t *testing.T) {
	t.Parallel()
	dp := newDeviceProvider(t, DeviceOptions{})
	dc, uc := dp.start(t, cliClientID, "openid")
	dp.approve(t, uc)
	counts := pollBurst(t, dp, dc, 8)
	if counts["tokens"] != 1 || counts["invalid_grant"] != 7 {
		t.Fatalf("outcomes %v; want tokens once and 7 invalid_grant", counts)
	}
}

func pollBurst(t *testing.T, dp *deviceProvider, dc string, n int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := dp.poll(t, cliClientID, dc)
			k := r.str("error")
			if r.status == http.StatusOK {
				k = "tokens"
			}
			mu.Lock()
			counts[k]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts
}

// TestUserCodes: the shape of new codes, and how typed codes are read.
func TestUserCodes(t *testing.T) {
	t.Parallel()
	for range 200 {
		c, err := newUserCode()
		if err != nil || !userCodeShape.MatchString(FormatUserCode(c)) {
			t.Fatalf("new user code %q (%v)", c, err)
		}
	}
	tests := []struct {
		name, typed, want string
	}{
		{"ok/as-shown", "BCDF-GHJK", "BCDFGHJK"},
		{"ok/lower-case", "bcdf-ghjk", "BCDFGHJK"},
		{"ok/no-dash", "bcdfghjk", "BCDFGHJK"},
		{"ok/spaces", " bcdf ghjk ", "BCDFGHJK"},
		{"fail/vowel", "BCDF-GHJA", ""},
		{"fail/digit", "BCDF-GHJ1", ""},
		{"fail/short", "BCDF-GHJ", ""},
		{"fail/long", "BCDF-GHJKL", ""},
		{"fail/empty", "", ""},
		{"fail/non-ascii", "BCDF-GHJ\u212a", ""},
		{"fail/huge", strings.Repeat("B", 10000), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeUserCode(tc.typed)
			if got != tc.want || (tc.want == "") != errors.Is(err, oauth.ErrDeviceMalformed) {
				t.Fatalf("NormalizeUserCode(%q) = %q, %v; want %q", tc.typed, got, err, tc.want)
			}
		})
	}
}

// TestUserCodeGuessingIsThrottled performs a brute force of user codes:
// per user, after the free guesses every lookup is refused, even of a
// code that exists; entering one's own valid code between guesses does
// not reset the count; and guesses of many users together hit the
// global limit.
func TestUserCodeGuessingIsThrottled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("fail/per-user", func(t *testing.T) {
		t.Parallel()
		dp := newDeviceProvider(t, DeviceOptions{})
		_, own := dp.start(t, cliClientID, "openid")
		_, victim := dp.start(t, cliClientID, "openid")
		guesses := 0
		for i := range 20 {
			if _, err := dp.LookupDevice(ctx, dp.user.ID, own); err != nil && !errors.Is(err, oauth.ErrDeviceThrottled) {
				t.Fatalf("own code: %v", err)
			}
			_, err := dp.LookupDevice(ctx, dp.user.ID, wrongCode(i, own, victim))
			if errors.Is(err, oauth.ErrDeviceThrottled) {
				break
			}
			if !errors.Is(err, oauth.ErrDeviceUnknown) {
				t.Fatalf("guess %d: %v", i, err)
			}
			guesses++
		}
		// Five free, then one that starts the first lock.
		if guesses != 6 {
			t.Fatalf("%d wrong codes before the throttle, want 6", guesses)
		}
		if _, err := dp.LookupDevice(ctx, dp.user.ID, victim); !errors.Is(err, oauth.ErrDeviceThrottled) {
			t.Fatalf("a right guess while throttled: %v, want ErrDeviceThrottled", err)
		}
		if _, err := dp.LookupDevice(ctx, "u-bob", victim); err != nil {
			t.Fatalf("another user is not throttled by alice's guesses: %v", err)
		}
	})
	t.Run("fail/global", func(t *testing.T) {
		t.Parallel()
		dp := newDeviceProvider(t, DeviceOptions{})
		global := authn.NewThrottle(dp.db, dp.clock.Now)
		global.Free, global.HardLimit = 6, 0
		dp.Device.GlobalThrottle = global
		_, own := dp.start(t, cliClientID, "openid")
		refused := 0
		for i := range 12 {
			user := []string{"u-1", "u-2", "u-3", "u-4"}[i%4] // 3 guesses each: none reaches its own limit
			if _, err := dp.LookupDevice(ctx, user, wrongCode(i, own, "")); errors.Is(err, oauth.ErrDeviceThrottled) {
				refused++
			}
		}
		// Six free, one that starts the lock, then every one refused.
		if refused != 5 {
			t.Fatalf("%d of 12 guesses refused, want 5 past the global limit", refused)
		}
	})
}

// wrongCode is a well-formed user code that is neither a nor b.
func wrongCode(i int, a, b string) string {
	for j := i; ; j++ {
		c := FormatUserCode(strings.Repeat(string(userCodeAlphabet[j%len(userCodeAlphabet)]), 4) + "BCDF")
		if c != a && c != b {
			return c
		}
	}
}

// TestDeviceAnswerIsOnce: a second answer (a replayed approve form,
// another tab) finds the request answered and changes nothing.
func TestDeviceAnswerIsOnce(t *testing.T) {
	t.Parallel()
	dp := newDeviceProvider(t, DeviceOptions{})
	ctx := context.Background()
	dc, uc := dp.start(t, cliClientID, "openid")
	d, err := dp.findDevice(ctx, dp.user.ID, uc)
	if err != nil {
		t.Fatal(err)
	}
	a := dp.authState("openid")
	if err := dp.answer(ctx, d, deviceStatusApproved, "", &a); err != nil {
		t.Fatal(err)
	}
	if err := dp.answer(ctx, d, deviceStatusDenied, "device-denied-by-user", nil); !errors.Is(err, oauth.ErrDeviceAnswered) {
		t.Fatalf("a second answer: %v, want ErrDeviceAnswered", err)
	}
	if _, err := dp.LookupDevice(ctx, dp.user.ID, uc); !errors.Is(err, oauth.ErrDeviceAnswered) {
		t.Fatalf("lookup of an answered code: %v, want ErrDeviceAnswered", err)
	}
	if r := dp.poll(t, cliClientID, dc); r.status != http.StatusOK {
		t.Fatalf("the first answer was lost: %d %v", r.status, r.body)
	}
}

// BenchmarkDevicePoll measures one poll of a waiting device code as a
// device sees it: a POST to the token endpoint by a public client, and
// the compare-and-swap of the record that counts the poll (SQLite).
func BenchmarkDevicePoll(b *testing.B) {
	tp := newTestProvider(b)
	clients, err := NewClients(tp.db, ClientsOptions{Declared: []ClientOptions{
		{ID: cliClientID, Public: true, AuthMethod: AuthNone, GrantTypes: []string{GrantDeviceCode}},
	}, Now: tp.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	tp.Clients = clients
	tp.Device = deviceDefaults(DeviceOptions{Lifetime: 30 * time.Minute}, tp.db, tp.clock.Now)
	mux := http.NewServeMux()
	tp.Mount(mux)
	deviceCode, _, err := tp.storeDevice(context.Background(), deviceRecord{ClientID: cliClientID, Scope: []string{"openid"},
		CreatedAt: tp.clock.Now(), ExpiresAt: tp.clock.Now().Add(30 * time.Minute), Interval: 0, Status: deviceStatusPending})
	if err != nil {
		b.Fatal(err)
	}
	body := url.Values{"grant_type": {GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {cliClientID}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, pathToken, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), "authorization_pending") {
			b.Fatalf("poll: %d %s", rec.Code, rec.Body.String())
		}
	}
}

// TestHeldStatementIsItsUsersAlone: a statement the database gateway
// holds is shown, approved or denied only by its own user: to anyone
// else its code is as unknown as a wrong guess (and counted as one);
// the token endpoint refuses its handle; an approval is handed to the
// gateway once; a released hold leads nowhere.
func TestHeldStatementIsItsUsersAlone(t *testing.T) {
	t.Parallel()
	dp := newDeviceProvider(t, DeviceOptions{})
	ctx := context.Background()
	held := access.HeldStatement{UserID: dp.user.ID, Database: "bank", Contexts: []string{"c1"},
		Statement: policy.Statement{Class: "read", Command: "SELECT", Tables: []string{"customers"}, Labels: []string{"pii"}}, From: "127.0.0.1"}
	tk, err := dp.HoldStatement(ctx, held, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !userCodeShape.MatchString(tk.UserCode) || tk.Link != dp.Issuer+"/device?user_code="+tk.UserCode {
		t.Fatalf("ticket %+v", tk)
	}
	if _, err := dp.LookupDevice(ctx, "someone-else", tk.UserCode); !errors.Is(err, oauth.ErrDeviceUnknown) {
		t.Fatalf("another user's lookup: %v, want ErrDeviceUnknown", err)
	}
	req, err := dp.LookupDevice(ctx, dp.user.ID, tk.UserCode)
	if err != nil || req.Database != "bank" || req.Command != "SELECT" || strings.Join(req.Labels, ",") != "pii" {
		t.Fatalf("own lookup: %+v, %v", req, err)
	}
	wantOAuthError(t, dp.poll(t, cliClientID, tk.Handle), http.StatusBadRequest, "invalid_grant")
	if a, err := dp.HeldAnswer(ctx, tk.Handle); err != nil || a.State != access.HoldPending {
		t.Fatalf("before an answer: %+v, %v", a, err)
	}
	d, err := dp.findDevice(ctx, dp.user.ID, tk.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	proof := store.AuthEvent{Method: "totp", Time: dp.clock.Now(), AMR: []string{"otp"}}
	if err := dp.answer(ctx, d, deviceStatusApproved, "", &authState{UserID: dp.user.ID, Proofs: []store.AuthEvent{proof}}); err != nil {
		t.Fatal(err)
	}
	a, err := dp.HeldAnswer(ctx, tk.Handle)
	if err != nil || a.State != access.HoldApproved || len(a.Proofs) != 1 || a.Proofs[0].Method != "totp" {
		t.Fatalf("approved: %+v, %v", a, err)
	}
	if a, _ := dp.HeldAnswer(ctx, tk.Handle); a.State != access.HoldGone {
		t.Fatalf("a second poll got %+v: an approval must be handed over once", a)
	}
	dp.ReleaseHeld(ctx, tk)
	if _, err := dp.LookupDevice(ctx, dp.user.ID, tk.UserCode); !errors.Is(err, oauth.ErrDeviceUnknown) {
		t.Fatalf("released hold: %v, want ErrDeviceUnknown", err)
	}

	denied, err := dp.HoldStatement(ctx, held, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	d, err = dp.findDevice(ctx, dp.user.ID, denied.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.answer(ctx, d, deviceStatusDenied, "you denied the statement in the browser", nil); err != nil {
		t.Fatal(err)
	}
	if a, _ := dp.HeldAnswer(ctx, denied.Handle); a.State != access.HoldDenied || !strings.Contains(a.Why, "denied") {
		t.Fatalf("denied: %+v", a)
	}
	dp.clock.Add(3 * time.Minute)
	expired, err := dp.HoldStatement(ctx, held, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	dp.clock.Add(2 * time.Minute)
	if a, _ := dp.HeldAnswer(ctx, expired.Handle); a.State != access.HoldGone {
		t.Fatalf("expired: %+v", a)
	}
}
