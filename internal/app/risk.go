package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stepgate/stepgate/internal/authn/password"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/geoip"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/revoke"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
)

// Caps of the stored history: enough for every detector's window.
const (
	maxRecentSignIns   = 50
	maxFailuresKept    = 200
	riskHistoryKeep    = 90 * 24 * time.Hour
	failureHistoryKeep = 2 * time.Hour
)

// Risk assesses sign-ins with the pure detectors of package risk over a
// history kept in the store, and keeps users' risk.
type Risk struct {
	// engine is swapped whole when an IP list file changes.
	engine    atomic.Pointer[risk.Engine]
	base      risk.Config         // without the IP lists
	lists     []config.RiskIPList // the list files, re-read on change
	listsMu   sync.Mutex          // guards listsSeen
	listsSeen string              // what the files looked like when read
	kv        riskStore
	geo       *geoip.DB
	clientIP  httpx.ClientIP
	lowAgeOut time.Duration
	revoker   *revoke.Revoker
	metrics   *metrics.Metrics
	log       *slog.Logger
	now       func() time.Time

	// mu guards userRisk, recent answers of UserRisk: every request the
	// gateway decides asks, and the answer changes rarely.
	mu       sync.Mutex
	userRisk map[string]cachedRisk
}

// cachedRisk is a user's risk level as read at a time.
type cachedRisk struct {
	level string
	at    time.Time
}

// userRiskTTL bounds how stale a cached user risk may be on another
// node; on this node Raise and SetUserRisk drop the entry at once.
const userRiskTTL = 500 * time.Millisecond

// riskStore is what the risk service keeps and reads.
type riskStore interface {
	store.KV
	GetUserByName(ctx context.Context, username string) (store.User, error)
}

// NewRisk builds the risk service for cfg.
func NewRisk(cfg config.Config, kv riskStore, geo *geoip.DB, clientIP httpx.ClientIP, revoker *revoke.Revoker, log *slog.Logger) (*Risk, error) {
	rc := risk.Config{
		MaxSpeedKmh: float64(cfg.Risk.MaxSpeedKmh), LearningSignIns: cfg.Risk.LearningSignIns,
		SprayThreshold: cfg.Risk.SprayThreshold, BruteForceThreshold: cfg.Risk.BruteForceThreshold,
	}
	if cfg.Password.BreachedList != "" {
		list, err := password.LoadBreached(cfg.Password.BreachedList)
		if err != nil {
			return nil, fmt.Errorf("password.breached_list: %w", err)
		}
		rc.Breached = list
	}
	k := &Risk{base: rc, lists: cfg.Risk.IPLists, kv: kv, geo: geo, clientIP: clientIP, lowAgeOut: cfg.Risk.UserRiskLowAgeOut.D(),
		revoker: revoker, log: log, now: time.Now, userRisk: map[string]cachedRisk{}}
	if err := k.loadLists(); err != nil {
		return nil, err
	}
	return k, nil
}

// loadLists reads the IP list files and installs an engine with them.
func (k *Risk) loadLists() error {
	rc := k.base
	for i, l := range k.lists {
		level, err := risk.ParseLevel(l.Level)
		if err != nil {
			return fmt.Errorf("risk.ip_lists[%d].level: %w", i, err)
		}
		f, err := os.Open(l.File) //nolint:gosec // the operator names the file
		if err != nil {
			return fmt.Errorf("risk.ip_lists[%d].file: %w", i, err)
		}
		list, err := risk.ParseIPList(l.Name, level, f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("risk.ip_lists[%d]: %w", i, err)
		}
		rc.IPLists = append(rc.IPLists, list)
	}
	engine, err := risk.New(rc)
	if err != nil {
		return err
	}
	k.setSeen(k.listsStamp())
	k.engine.Store(engine)
	return nil
}

func (k *Risk) setSeen(s string) {
	k.listsMu.Lock()
	k.listsSeen = s
	k.listsMu.Unlock()
}

func (k *Risk) seen() string {
	k.listsMu.Lock()
	defer k.listsMu.Unlock()
	return k.listsSeen
}

// listsStamp describes the list files' sizes and modification times.
func (k *Risk) listsStamp() string {
	var b strings.Builder
	for _, l := range k.lists {
		if fi, err := os.Stat(l.File); err == nil {
			fmt.Fprintf(&b, "%s|%d|%d;", l.File, fi.Size(), fi.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s|missing;", l.File)
		}
	}
	return b.String()
}

// ReloadChangedLists re-reads the IP list files if they changed since
// they were read (threat feeds are refreshed in place); the server runs it
// periodically. A list that no longer parses keeps the previous lists,
// and the error says why.
func (k *Risk) ReloadChangedLists(ctx context.Context) error {
	if len(k.lists) == 0 || k.listsStamp() == k.seen() {
		return nil
	}
	if err := k.loadLists(); err != nil {
		k.setSeen(k.listsStamp()) // do not retry until it changes again
		return fmt.Errorf("an IP list changed but could not be read; keeping the previous lists: %w", err)
	}
	k.log.InfoContext(ctx, "IP lists reloaded", "lists", len(k.lists))
	return nil
}

// attempt describes a sign-in attempt of r for the detectors.
func (k *Risk) attempt(r *http.Request, userID string, success bool) risk.SignIn {
	ip := k.clientIP.Of(r)
	ua := r.UserAgent()
	in := risk.SignIn{UserID: userID, Time: k.now().UTC(), IP: ip, Platform: policy.PlatformFromUserAgent(ua), Browser: browserOf(ua), Success: success}
	if k.geo != nil {
		if loc, err := k.geo.Lookup(ip); err == nil {
			in.Country, in.Latitude, in.Longitude, in.HasCoordinates = loc.Country, loc.Latitude, loc.Longitude, loc.HasCoordinates
		}
	}
	return in
}

// browserOf names the browser family of a user agent.
func browserOf(ua string) string {
	switch {
	case strings.Contains(ua, "Firefox/"):
		return "firefox"
	case strings.Contains(ua, "Edg/"):
		return "edge"
	case strings.Contains(ua, "Chrome/") || strings.Contains(ua, "Chromium/"):
		return "chrome"
	case strings.Contains(ua, "Safari/"):
		return "safari"
	case ua == "":
		return ""
	}
	return "other"
}

// Key/value keys of the history.
func recentKey(userID string) string { return "risk/recent/" + userID }
func failKey(userID string) string   { return "risk/fail/user/" + userID }
func netKey(n netip.Prefix) string   { return "risk/fail/net/" + n.String() }
func userRiskKey(id string) string   { return "risk/user/" + id }

// network is the /24 or /48 an address belongs to.
func network(ip netip.Addr) netip.Prefix {
	bits := 48
	if ip.Is4() || ip.Is4In6() {
		ip, bits = ip.Unmap(), 24
	}
	p, _ := ip.Prefix(bits)
	return p
}

// history loads what the detectors compare an attempt with.
func (k *Risk) history(ctx context.Context, in risk.SignIn) (*risk.MemoryHistory, error) {
	var all []risk.SignIn
	for _, key := range []string{recentKey(in.UserID), failKey(in.UserID), netKey(network(in.IP))} {
		var part []risk.SignIn
		if err := k.load(ctx, key, &part); err != nil {
			return nil, err
		}
		all = append(all, part...)
	}
	return risk.NewMemoryHistory(all...), nil
}

func (k *Risk) load(ctx context.Context, key string, v any) error {
	e, err := k.kv.GetKV(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(e.Value, v)
}

// appendTo adds in to the list at key, keeping the newest max.
func (k *Risk) appendTo(ctx context.Context, key string, in risk.SignIn, maxLen int, keep time.Duration) error {
	add := func(b []byte) ([]byte, error) {
		var list []risk.SignIn
		if len(b) > 0 {
			if err := json.Unmarshal(b, &list); err != nil {
				list = nil // a corrupt history is started over, not fatal
			}
		}
		list = append([]risk.SignIn{in}, list...)
		if len(list) > maxLen {
			list = list[:maxLen]
		}
		return json.Marshal(list)
	}
	_, err := k.kv.UpdateKV(ctx, key, add)
	if errors.Is(err, store.ErrNotFound) {
		b, _ := add(nil)
		if _, err = k.kv.CreateKV(ctx, key, b, k.now().Add(keep)); errors.Is(err, store.ErrConflict) {
			return k.appendTo(ctx, key, in, maxLen, keep)
		}
	}
	return err
}

// Failed records a failed sign-in for username. An unknown username
// still counts toward spray from its network.
func (k *Risk) Failed(r *http.Request, username string) {
	name := strings.ToLower(strings.TrimSpace(username))
	u, lookupErr := k.kv.GetUserByName(r.Context(), name)
	known := lookupErr == nil
	id := u.ID
	if !known {
		// Spray counts accounts tried, existing or not; a name that is
		// no account still stands for one.
		id = "unknown:" + name
	}
	in := k.attempt(r, id, false)
	var err error
	if known {
		err = k.appendTo(r.Context(), failKey(id), in, maxFailuresKept, failureHistoryKeep)
	}
	if err == nil {
		err = k.appendTo(r.Context(), netKey(network(in.IP)), in, maxFailuresKept, failureHistoryKeep)
	}
	if err != nil {
		k.log.WarnContext(r.Context(), "record failed sign-in for risk", "err", err)
	}
}

// SignedIn assesses a successful sign-in and returns its level and
// detections: the level goes on the session's sign-in event, the
// detections with their evidence into the sign-in log. A sign-in without risk
// joins the history at once; a risky one only when its risk is
// remediated (Remediated), so a stolen password alone never makes the
// thief's location familiar. A leaked password raises the user's risk.
func (k *Risk) SignedIn(r *http.Request, u store.User, pw, deviceID string) (string, []risk.Detection) {
	ctx := r.Context()
	in := k.attempt(r, u.ID, true)
	if deviceID != "" {
		// The stored history keeps a hash, not the cookie's value.
		sum := sha256.Sum256([]byte(deviceID))
		in.DeviceID = hex.EncodeToString(sum[:8])
	}
	h, err := k.history(ctx, in)
	if err != nil {
		k.log.WarnContext(ctx, "load risk history", "err", err)
		return "", nil
	}
	engine := k.engine.Load()
	a := engine.Assess(in, h)
	if d, leaked := engine.LeakedPassword(in, pw); leaked {
		k.Raise(ctx, u.ID, d)
	}
	for _, d := range a.Detections {
		k.metrics.Detection(d.Reason, d.Level.String())
		k.log.InfoContext(ctx, "sign-in risk detected", "user", u.Username, "level", d.Level.String(), "reason", d.Reason, "evidence", d.Evidence)
	}
	if a.SignInRisk == risk.None {
		if err := k.appendTo(ctx, recentKey(u.ID), in, maxRecentSignIns, riskHistoryKeep); err != nil {
			k.log.WarnContext(ctx, "record sign-in for risk", "err", err)
		}
		return "", nil
	}
	return a.SignInRisk.String(), a.Detections
}

// Remediated records that a risky sign-in's user completed the further
// proof a policy asked for: the sign-in joins the history, so the place
// and device are familiar next time.
func (k *Risk) Remediated(r *http.Request, s store.Session) {
	if len(s.Events) == 0 || s.Events[0].Risk == "" {
		return
	}
	in := k.attempt(r, s.UserID, true)
	in.Time = s.Events[0].Time
	if err := k.appendTo(r.Context(), recentKey(s.UserID), in, maxRecentSignIns, riskHistoryKeep); err != nil {
		k.log.WarnContext(r.Context(), "record remediated sign-in", "err", err)
		return
	}
	k.log.InfoContext(r.Context(), "sign-in risk remediated", "user_id", s.UserID, "level", s.Events[0].Risk)
}

// UserRisk is the user's effective risk level for policies.
func (k *Risk) UserRisk(ctx context.Context, userID string) string {
	now := k.now()
	k.mu.Lock()
	c, ok := k.userRisk[userID]
	k.mu.Unlock()
	if ok && now.Sub(c.at) < userRiskTTL && !now.Before(c.at) {
		return c.level
	}
	var st risk.UserRiskState
	if err := k.load(ctx, userRiskKey(userID), &st); err != nil {
		k.log.WarnContext(ctx, "load user risk", "err", err)
		return ""
	}
	level := ""
	if l := st.Effective(now, k.lowAgeOut); l != risk.None {
		level = l.String()
	}
	k.mu.Lock()
	if len(k.userRisk) >= 10000 {
		clear(k.userRisk) // bounded; the next requests read again
	}
	k.userRisk[userID] = cachedRisk{level: level, at: now}
	k.mu.Unlock()
	return level
}

// forget drops the cached risk of userID after it changed here.
func (k *Risk) forget(userID string) {
	k.mu.Lock()
	delete(k.userRisk, userID)
	k.mu.Unlock()
}

// Raise adds a detection to the user's risk. Reaching high is a security
// event: the user's sessions and tokens are revoked at once.
func (k *Risk) Raise(ctx context.Context, userID string, d risk.Detection) {
	high := false
	err := k.updateUserRisk(ctx, userID, func(st *risk.UserRiskState) {
		before := st.Level
		st.Raise(d, k.now())
		high = st.Level == risk.High && before != risk.High
	})
	if err != nil {
		k.log.ErrorContext(ctx, "raise user risk", "err", err)
		return
	}
	k.log.WarnContext(ctx, "user risk raised", "user_id", userID, "reason", d.Reason, "level", d.Level.String())
	if high && k.revoker != nil {
		if err := k.revoker.RevokeUser(ctx, userID, "risk-high"); err != nil {
			k.log.ErrorContext(ctx, "revoke after high user risk", "err", err)
		}
	}
}

// passwordChanged clears the user's risk after a secure password change
// (one made right after a second factor): whoever held the old password
// holds nothing now.
func (a *App) passwordChanged(ctx context.Context, userID string, afterMFA bool) {
	if !afterMFA {
		return
	}
	if err := a.Risk.updateUserRisk(ctx, userID, func(st *risk.UserRiskState) { st.Remediated(a.Risk.now()) }); err != nil {
		a.Log.ErrorContext(ctx, "remediate user risk", "err", err)
		return
	}
	a.Log.InfoContext(ctx, "user risk remediated by a secure password change", "user_id", userID)
}

// recordAudit writes a change to the audit trail; a failure is logged,
// since the change itself is already made.
func (a *App) recordAudit(ctx context.Context, actor, action, target string) {
	if _, err := a.Audit.Record(ctx, actor, action, target, "", nil, nil); err != nil {
		a.Log.ErrorContext(ctx, "write the audit trail", "action", action, "err", err)
	}
}

// SetUserRisk applies an administrator's decision: confirm the account
// compromised (high, and revoked) or dismiss its risk.
func (k *Risk) SetUserRisk(ctx context.Context, userID string, compromised bool) error {
	err := k.updateUserRisk(ctx, userID, func(st *risk.UserRiskState) {
		if compromised {
			st.ConfirmCompromised(k.now())
		} else {
			st.Dismiss(k.now())
		}
	})
	if err == nil && compromised && k.revoker != nil {
		err = k.revoker.RevokeUser(ctx, userID, "confirmed-compromised")
	}
	return err
}

func (k *Risk) updateUserRisk(ctx context.Context, userID string, fn func(*risk.UserRiskState)) error {
	defer k.forget(userID)
	apply := func(b []byte) ([]byte, error) {
		var st risk.UserRiskState
		if len(b) > 0 {
			if err := json.Unmarshal(b, &st); err != nil {
				return nil, err
			}
		}
		fn(&st)
		return json.Marshal(st)
	}
	_, err := k.kv.UpdateKV(ctx, userRiskKey(userID), apply)
	if errors.Is(err, store.ErrNotFound) {
		b, aerr := apply(nil)
		if aerr != nil {
			return aerr
		}
		if _, err = k.kv.CreateKV(ctx, userRiskKey(userID), b, time.Time{}); errors.Is(err, store.ErrConflict) {
			return k.updateUserRisk(ctx, userID, fn)
		}
	}
	return err
}
