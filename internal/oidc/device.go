package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// The device authorization grant (RFC 8628): a client without a browser
// (a command line, a TV) asks for a device code and a user code, shows
// the user code and the verification page, and polls the token endpoint
// while the user, signed in on any browser, enters the code, sees which
// client asks for what, and approves. Approval is decided as authorize
// decides (the same policies on the session's proofs, with step-up), and
// the tokens carry those proofs like authorize-issued ones.

// GrantDeviceCode is the device authorization grant type.
const GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// PathDevice is the verification page, served with the browser pages.
const PathDevice = "/device"

const pathDeviceAuthorization = "/oauth2/device_authorization"

// Device authorizations in the key/value space: the record under the
// hash of its device code (the bearer secret), and an index from the
// hash of the user code to the device code's hash. Neither secret is
// stored, so a read of the database gives nothing to poll or approve with.
var (
	devices   = kvspace.JSON[deviceRecord](kvspace.OIDCDeviceCode)
	userCodes = kvspace.JSON[userCodeRecord](kvspace.OIDCDeviceUser)
)

// Device authorization states.
const (
	deviceStatusPending  = "pending"
	deviceStatusApproved = "approved"
	deviceStatusDenied   = "denied"
	deviceStatusRedeemed = "redeemed"
)

// deviceRecord is one device authorization.
type deviceRecord struct {
	ClientID  string    `json:"client_id"`
	Scope     []string  `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Interval is the least time between polls, in seconds; slow_down
	// raises it.
	Interval int64     `json:"interval"`
	LastPoll time.Time `json:"last_poll,omitzero"`
	Status   string    `json:"status"`
	// Reason says why it was denied (the user, a policy, a device code
	// presented by another client), for the log.
	Reason string `json:"reason,omitempty"`
	// Auth is what the approving session proved, as it goes into the
	// tokens.
	Auth       *authState `json:"auth,omitempty"`
	AnsweredAt time.Time  `json:"answered_at,omitzero"`
	// GrantID is the grant the redemption made; set once, it marks the
	// device code used.
	GrantID string `json:"grant_id,omitempty"`
	// Held, when set, makes the record a statement the database gateway
	// holds for its user's approval (device_held.go), not a device grant.
	Held *heldRecord `json:"held,omitempty"`
	// Database is the database the tokens are asked for (the resource
	// parameter), shown on the approval page; empty for the client.
	Database string `json:"database,omitempty"`
}

// userCodeRecord points from a user code to its device authorization.
type userCodeRecord struct {
	Device string `json:"device"` // hex SHA-256 of the device code
}

// DeviceOptions configure the device authorization grant.
type DeviceOptions struct {
	// Lifetime is how long a device code and its user code live;
	// Interval the least time between polls.
	Lifetime, Interval time.Duration
	// MaxPending and MaxBytes bound the device authorizations stored at
	// once, each for device codes and for user codes: any client with
	// the grant makes them without a user.
	MaxPending int
	MaxBytes   int64
	// PerAddress bounds the device authorizations one client address (an
	// IPv6 /64) starts in each window of Lifetime, so that one source
	// cannot take the whole of MaxPending.
	PerAddress int
	// UserThrottle counts wrong user codes per user; GlobalThrottle all
	// of them together. Nil takes the defaults (newDeviceThrottles).
	UserThrottle, GlobalThrottle *authn.Throttle
}

// DefaultDeviceOptions are the defaults of the configuration.
func DefaultDeviceOptions() DeviceOptions {
	return DeviceOptions{Lifetime: 10 * time.Minute, Interval: 5 * time.Second, MaxPending: 1000, MaxBytes: 4 << 20, PerAddress: 30}
}

// deviceDefaults fills in what o leaves unset.
func deviceDefaults(o DeviceOptions, kv store.KV, now func() time.Time) DeviceOptions {
	def := DefaultDeviceOptions()
	if o.Lifetime <= 0 {
		o.Lifetime = def.Lifetime
	}
	if o.Interval <= 0 {
		o.Interval = def.Interval
	}
	if o.MaxPending <= 0 {
		o.MaxPending = def.MaxPending
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = def.MaxBytes
	}
	if o.PerAddress <= 0 {
		o.PerAddress = def.PerAddress
	}
	user, global := newDeviceThrottles(kv, now)
	if o.UserThrottle == nil {
		o.UserThrottle = user
	}
	if o.GlobalThrottle == nil {
		o.GlobalThrottle = global
	}
	return o
}

// slowDownStep is what RFC 8628 3.5 adds to the interval of a device
// that polls too fast.
const slowDownStep = 5 * time.Second

// deviceGrace keeps a device authorization past its expiry, so a device
// polling late hears expired_token (and the page "expired") rather than
// that the code is unknown.
const deviceGrace = 10 * time.Minute

// User codes: 8 characters from 20 consonants (RFC 8628 6.1), shown as
// XXXX-XXXX. No vowels, so no words are spelt; no digits, so nothing
// reads as O/0 or I/1. 20^8 codes give 34.5 bits: with at most
// MaxPending codes live, one guess finds one with a chance of
// MaxPending/2.56e10, and guesses are throttled (findDevice).
const (
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
)

// Throttle keys of wrong user codes.
const (
	deviceGuessUserKey   = "device-code/" // + user id
	deviceGuessGlobalKey = "device-code"
)

// newDeviceThrottles are the default throttles of user code guesses.
// Per user, 5 free wrong codes, then one per lock period doubling from
// 30s to 15 minutes. Together, over every user, 1000 free, then the
// same. A count is forgotten after 75 quiet minutes, so an attacker with
// many accounts gets at most about 19,000 guesses a day, and with 1000
// codes waiting each finds one with a chance of 1 in 25 million. Neither
// locks for good: the keys guard no account, and a hard lock would let
// anyone turn device sign-in off for everyone.
func newDeviceThrottles(kv store.KV, now func() time.Time) (user, global *authn.Throttle) {
	user = authn.NewThrottle(kv, now)
	user.HardLimit = 0
	global = authn.NewThrottle(kv, now)
	global.Free, global.HardLimit = 1000, 0
	return user, global
}

// newUserCode returns a random user code, unformatted.
func newUserCode() (string, error) {
	var b strings.Builder
	n := big.NewInt(int64(len(userCodeAlphabet)))
	for range userCodeLength {
		i, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		b.WriteByte(userCodeAlphabet[i.Int64()])
	}
	return b.String(), nil
}

// FormatUserCode shows a user code as people read it: XXXX-XXXX.
func FormatUserCode(code string) string {
	if len(code) != userCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// NormalizeUserCode reads a user code as typed: any case, with or
// without the dash and spaces. It returns the code's canonical form, or
// oauth.ErrDeviceMalformed when the text cannot be a user code.
func NormalizeUserCode(typed string) (string, error) {
	if len(typed) > 64 {
		return "", oauth.ErrDeviceMalformed
	}
	code := strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t':
			return -1
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, typed)
	if len(code) != userCodeLength || strings.Trim(code, userCodeAlphabet) != "" {
		return "", oauth.ErrDeviceMalformed
	}
	return code, nil
}

// deviceAuthorization is RFC 8628 3.1-3.2: a client asks for a device
// code. It authenticates as at the token endpoint (a public client by
// its client_id alone) and must be allowed the grant.
func (p *Provider) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	form, c, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	if !c.Allows(GrantDeviceCode) {
		p.writeError(w, r, oauthErr("unauthorized_client", http.StatusBadRequest, "this client may not use the device authorization grant; add "+GrantDeviceCode+" to its grant types"))
		return
	}
	// Each scope once: the record is stored for a client nobody signed
	// in to, so a scope repeated to the size of the form would spend the
	// byte quota on one request.
	scope := slices.Compact(slices.Sorted(slices.Values(strings.Fields(form.Get("scope")))))
	for _, s := range scope {
		if !slices.Contains(knownScopes, s) {
			p.writeError(w, r, oauthErr("invalid_scope", http.StatusBadRequest, fmt.Sprintf("scope %q is not supported; use %s", s, strings.Join(knownScopes, ", "))))
			return
		}
	}
	db, err := p.requestedDatabase(form)
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	rate, ok, err := p.allowDeviceStart(r)
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(rate.end.Sub(p.Now())/time.Second)+1, 10))
		p.writeError(w, r, errDeviceBusy("too many device sign-ins were started from this network; finish or wait for those first"))
		return
	}
	now := p.Now()
	rec := deviceRecord{
		ClientID: c.ID, Scope: scope, CreatedAt: now.UTC(), ExpiresAt: now.Add(p.Device.Lifetime).UTC(),
		Interval: int64(p.Device.Interval / time.Second), Status: deviceStatusPending, Database: db,
	}
	deviceCode, userCode, err := p.storeDevice(r.Context(), rec)
	if errors.Is(err, store.ErrQuota) {
		// Anyone holding a client id can start these: the bound keeps a
		// flood from filling the store, and the device is told to wait.
		p.Log.WarnContext(r.Context(), "device authorization refused: too many waiting", "client", c.ID, "err", err)
		w.Header().Set("Retry-After", "60")
		p.writeError(w, r, errDeviceBusy("too many device sign-ins are waiting; try again in a minute"))
		return
	}
	if err == nil {
		err = p.countDeviceStart(r.Context(), rate)
	}
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	verify := p.Issuer + PathDevice
	shown := FormatUserCode(userCode)
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               deviceCode,
		"user_code":                 shown,
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?user_code=" + url.QueryEscape(shown),
		"expires_in":                int64(p.Device.Lifetime / time.Second),
		"interval":                  rec.Interval,
	})
}

// storeDevice stores rec under a new device code and a new user code,
// within the quotas. A user code already waiting is drawn again.
func (p *Provider) storeDevice(ctx context.Context, rec deviceRecord) (deviceCode, userCode string, err error) {
	expires := rec.ExpiresAt.Add(deviceGrace)
	deviceCode = randomID(32)
	sum := sha256.Sum256([]byte(deviceCode))
	for range 5 {
		if userCode, err = newUserCode(); err != nil {
			return "", "", err
		}
		err = userCodes.At(userCode).CreateWithin(ctx, p.Store, userCodeRecord{Device: hex.EncodeToString(sum[:])}, expires,
			userCodes.Quota(p.Device.MaxPending, p.Device.MaxBytes))
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		return "", "", err
	}
	err = devices.At(deviceCode).CreateWithin(ctx, p.Store, rec, expires, devices.Quota(p.Device.MaxPending, p.Device.MaxBytes))
	if err != nil {
		_ = userCodes.At(userCode).Delete(context.WithoutCancel(ctx), p.Store)
		return "", "", err
	}
	return deviceCode, userCode, nil
}

// deviceRate is the count of device authorizations of one client
// address in one window: the counter, when the window ends, and whether
// the counter is still to be made.
type deviceRate struct {
	ref   kvspace.Ref[int64]
	end   time.Time
	first bool
}

// allowDeviceStart counts a device authorization of r's address and
// reports whether it is within the address's budget. An address with a
// counter is counted at once, so parallel requests each count; one
// without gets its counter only once its device authorization is stored
// (countDeviceStart): the counters are themselves something an anonymous
// client makes the server store, and this way there are never more of
// them than device authorizations, however many addresses a client
// posts from.
func (p *Provider) allowDeviceStart(r *http.Request) (deviceRate, bool, error) {
	now := p.Now()
	start := now.Truncate(p.Device.Lifetime)
	addr := httpx.ClientIP{}.Of(r)
	if p.Access != nil {
		addr = p.Access(r, store.User{}, nil, "", now).IP
	}
	sum := sha256.Sum256([]byte(httpx.AddressBucket(addr)))
	c := deviceRate{ref: kvspace.OIDCDeviceRate.At(hex.EncodeToString(sum[:16]), strconv.FormatInt(start.Unix(), 10)),
		end: start.Add(p.Device.Lifetime)}
	var n int64
	err := c.ref.Update(r.Context(), p.Store, func(v int64) (int64, error) {
		n = v + 1
		return n, nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.first = true
		return c, true, nil
	case err != nil:
		return c, false, err
	}
	return c, n <= int64(p.Device.PerAddress), nil
}

// countDeviceStart makes the counter of an address whose first device
// authorization in the window was just stored.
func (p *Provider) countDeviceStart(ctx context.Context, c deviceRate) error {
	if !c.first {
		return nil
	}
	err := c.ref.Create(ctx, p.Store, 1, c.end)
	if errors.Is(err, store.ErrConflict) {
		// Another of its requests was stored at the same moment.
		err = c.ref.Update(ctx, p.Store, func(n int64) (int64, error) { return n + 1, nil })
	}
	return err
}

// pollOutcome is what one poll of a device code found.
type pollOutcome int

const (
	pollPending pollOutcome = iota + 1
	pollSlowDown
	pollDenied
	pollOtherClient
	pollIssue
)

// errWrongTarget ends a poll that names another resource than the one
// the device code was made for.
var errWrongTarget = errors.New("resource differs from the device authorization's")

// errDeviceExpired ends a poll of an expired device code.
var errDeviceExpired = errors.New("device code expired")

// redeemDevice is the token endpoint's device_code grant (RFC 8628 3.4,
// 3.5). Every poll is one compare-and-swap on the device record, so the
// poll rate, the single redemption and the answer can never be seen
// half-changed, whichever node each poll reaches.
func (p *Provider) redeemDevice(ctx context.Context, c *Client, form url.Values, db string) (issued, error) {
	code := form.Get("device_code")
	if code == "" {
		return issued{}, oauthErr("invalid_request", http.StatusBadRequest, "device_code is missing")
	}
	now := p.Now()
	grantID := randomID(16)
	var rec deviceRecord
	var outcome pollOutcome
	err := devices.At(code).Update(ctx, p.Store, func(cur deviceRecord) (deviceRecord, error) {
		rec = cur
		if db != "" && db != cur.Database {
			// Checked before the poll changes anything: the device code
			// stays good for what was approved.
			return cur, errWrongTarget
		}
		var err error
		cur, outcome, err = poll(cur, c.ID, grantID, now)
		return cur, err
	})
	switch {
	case errors.Is(err, errWrongTarget):
		return issued{}, errInvalidTarget("the device code was approved for " + grantTarget(authState{Database: rec.Database}) + ", not the database " + db + "; start a device sign-in for " + db)
	case errors.Is(err, store.ErrNotFound):
		return issued{}, errInvalidGrant("the device code is invalid or expired", nil)
	case errors.Is(err, errDeviceExpired):
		return issued{}, errExpiredToken("the device code expired; start again")
	case errors.Is(err, errHeldNotGrant):
		return issued{}, errInvalidGrant("the device code is invalid or expired", err)
	case errors.Is(err, errGrantUsed):
		// A second redemption means the device code leaked: what the first
		// one issued is revoked, as for a reused authorization code.
		if rerr := p.revokeGrant(ctx, rec.GrantID, "device-code-reuse"); rerr != nil {
			return issued{}, rerr
		}
		return issued{}, errInvalidGrant("the device code was already used; the tokens issued for it are revoked", errors.New("device code replay"))
	case err != nil:
		return issued{}, err
	}
	switch outcome {
	case pollPending:
		return issued{}, oauthErr("authorization_pending", http.StatusBadRequest, "the user has not answered yet; poll again after the interval")
	case pollSlowDown:
		return issued{}, oauthErr("slow_down", http.StatusBadRequest, fmt.Sprintf("polled too fast; wait at least %d seconds between polls", rec.Interval+int64(slowDownStep/time.Second)))
	case pollDenied:
		return issued{}, oauthErr("access_denied", http.StatusBadRequest, "the request was denied")
	case pollOtherClient:
		return issued{}, errInvalidGrant("the device code was issued to another client", fmt.Errorf("device code of %s presented by %s", rec.ClientID, c.ID))
	}
	if rec.Auth == nil {
		return issued{}, fmt.Errorf("device authorization approved without proofs: %w", kvspace.ErrCorrupt)
	}
	return p.issueDevice(ctx, c, *rec.Auth, grantID, rec.AnsweredAt)
}

// poll is one poll of cur by client at now: the record to store and the
// outcome, or an error that stores nothing.
func poll(cur deviceRecord, client, grantID string, now time.Time) (deviceRecord, pollOutcome, error) {
	if !now.Before(cur.ExpiresAt) && cur.Status != deviceStatusRedeemed {
		return cur, 0, errDeviceExpired
	}
	switch {
	case cur.Held != nil:
		return cur, 0, errHeldNotGrant
	case cur.Status == deviceStatusRedeemed:
		return cur, 0, errGrantUsed
	case cur.ClientID != client:
		// Burnt: a device code shown to another client has leaked, so
		// the device it was made for must start again.
		cur.Status, cur.Reason, cur.Auth = deviceStatusDenied, "presented-by-other-client", nil
		return cur, pollOtherClient, nil
	case cur.Status == deviceStatusDenied:
		return cur, pollDenied, nil
	case cur.Status == deviceStatusApproved:
		cur.Status, cur.GrantID, cur.LastPoll = deviceStatusRedeemed, grantID, now.UTC()
		return cur, pollIssue, nil
	}
	// Pending. RFC 8628 3.5: a device polling faster than the interval
	// gets slow_down, and the interval grows by 5 seconds for good. The
	// check and the new poll time are one swap, so a burst of parallel
	// polls cannot all pass as the first.
	interval := time.Duration(cur.Interval) * time.Second
	fast := !cur.LastPoll.IsZero() && now.Sub(cur.LastPoll) < interval
	cur.LastPoll = now.UTC()
	if fast {
		cur.Interval += int64(slowDownStep / time.Second)
		return cur, pollSlowDown, nil
	}
	return cur, pollPending, nil
}

// issueDevice mints the tokens of an approved device authorization
// under a new grant, unless a security event (sign-out everywhere, a
// password change, disabling) came after the approval.
func (p *Provider) issueDevice(ctx context.Context, c *Client, a authState, grantID string, approved time.Time) (issued, error) {
	if err := p.checkEvents(ctx, a.UserID, approved); err != nil {
		return issued{}, errInvalidGrant("the approval was revoked by a security event; start again", err)
	}
	u, err := p.activeUser(ctx, a.UserID)
	if err != nil {
		return issued{}, err
	}
	if err := p.createGrant(ctx, grantID, c.ID, u.ID); err != nil {
		return issued{}, err
	}
	out, err := p.mint(c, u, a, grantID, slices.Contains(a.Scope, "openid"))
	if err != nil {
		return issued{}, err
	}
	if slices.Contains(a.Scope, "offline_access") && c.Allows(GrantRefreshToken) {
		if out.RefreshToken, err = p.newRefreshToken(ctx, c.ID, grantID, a); err != nil {
			return issued{}, err
		}
	}
	return out, nil
}

// deviceRef is a device authorization found by its user code.
type deviceRef struct {
	ref kvspace.Ref[deviceRecord]
	rec deviceRecord
}

// findDevice finds the device authorization of a typed user code for
// the signed-in user userID. Guessing is throttled per user and over
// all users before the store is asked: a user code is short enough
// (34.5 bits) that unthrottled guessing would find other people's
// waiting codes, and approve them (the device gets the guesser's tokens)
// or deny them. A right code gives its guess back but clears no count,
// so entering one's own code between guesses does not reset the limit.
func (p *Provider) findDevice(ctx context.Context, userID, typed string) (deviceRef, error) {
	code, err := NormalizeUserCode(typed)
	if err != nil {
		return deviceRef{}, err
	}
	var attempts []*authn.Attempt
	defer func() {
		for _, a := range attempts {
			_ = a.Release(ctx)
		}
	}()
	for _, l := range []struct {
		t   *authn.Throttle
		key string
	}{{p.Device.UserThrottle, deviceGuessUserKey + userID}, {p.Device.GlobalThrottle, deviceGuessGlobalKey}} {
		a, err := l.t.Begin(ctx, l.key)
		if errors.Is(err, authn.ErrThrottled) {
			p.Log.InfoContext(ctx, "device user code throttled", "user", userID, "key", l.key)
			return deviceRef{}, oauth.ErrDeviceThrottled
		}
		if err != nil {
			return deviceRef{}, err
		}
		attempts = append(attempts, a)
	}
	idx, err := userCodes.At(code).Get(ctx, p.Store)
	if errors.Is(err, store.ErrNotFound) {
		for _, a := range attempts {
			a.Failed()
		}
		return deviceRef{}, oauth.ErrDeviceUnknown
	}
	if err != nil {
		return deviceRef{}, err
	}
	sum, err := hex.DecodeString(idx.Device)
	if err != nil || len(sum) != sha256.Size {
		return deviceRef{}, fmt.Errorf("user code record is corrupt: %w", kvspace.ErrCorrupt)
	}
	ref := devices.AtDigest([sha256.Size]byte(sum))
	rec, err := ref.Get(ctx, p.Store)
	if errors.Is(err, store.ErrNotFound) {
		return deviceRef{}, oauth.ErrDeviceUnknown
	}
	if err != nil {
		return deviceRef{}, err
	}
	if rec.Held != nil && rec.Held.UserID != userID {
		// Another user's held statement: as unknown as a wrong code, and
		// counted as a wrong guess, so that nobody learns, approves or
		// denies it but its own user.
		for _, a := range attempts {
			a.Failed()
		}
		return deviceRef{}, oauth.ErrDeviceUnknown
	}
	switch {
	case rec.Status != deviceStatusPending:
		return deviceRef{}, oauth.ErrDeviceAnswered
	case !p.Now().Before(rec.ExpiresAt):
		return deviceRef{}, oauth.ErrDeviceExpired
	}
	return deviceRef{ref: ref, rec: rec}, nil
}

// LookupDevice describes the device authorization of a typed user code
// for the page that approves it; see findDevice for the throttling.
func (p *Provider) LookupDevice(ctx context.Context, userID, typed string) (oauth.DeviceRequest, error) {
	d, err := p.findDevice(ctx, userID, typed)
	if err != nil {
		return oauth.DeviceRequest{}, err
	}
	code, _ := NormalizeUserCode(typed)
	out := oauth.DeviceRequest{UserCode: FormatUserCode(code), ClientID: d.rec.ClientID, ClientName: d.rec.ClientID,
		Scopes: slices.Clone(d.rec.Scope), TokenFor: d.rec.Database, Expires: d.rec.ExpiresAt}
	if d.rec.Held != nil {
		describeHeld(&out, d.rec.Held)
		return out, nil
	}
	if c, err := p.Clients.Get(ctx, d.rec.ClientID); err == nil && c.Name != "" {
		out.ClientName = c.Name
	}
	return out, nil
}

// answer moves a pending device authorization to status, once: a
// second answer (a replayed form, two tabs) finds it answered.
func (p *Provider) answer(ctx context.Context, d deviceRef, status, why string, auth *authState) error {
	now := p.Now()
	err := d.ref.Update(ctx, p.Store, func(cur deviceRecord) (deviceRecord, error) {
		switch {
		case cur.Status != deviceStatusPending:
			return cur, oauth.ErrDeviceAnswered
		case !now.Before(cur.ExpiresAt):
			return cur, oauth.ErrDeviceExpired
		}
		cur.Status, cur.Reason, cur.Auth, cur.AnsweredAt = status, why, auth, now.UTC()
		if auth != nil {
			// The tokens are for what the device asked for and the user
			// saw on the page, taken from the stored request itself.
			a := *auth
			a.Database = cur.Database
			cur.Auth = &a
		}
		return cur, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return oauth.ErrDeviceExpired
	}
	return err
}

// errDeviceBusy is RFC 8628's slow_down for a device authorization the
// server will not store now (a quota or a per-address limit): 429, so
// the client waits (Retry-After says how long).
func errDeviceBusy(desc string) *Error {
	return oauthErr("slow_down", http.StatusTooManyRequests, desc)
}

// errExpiredToken is RFC 8628's expired_token: the device code ran out
// before the user answered.
func errExpiredToken(desc string) *Error {
	return oauthErr("expired_token", http.StatusBadRequest, desc)
}
