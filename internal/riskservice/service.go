// Package riskservice keeps the state behind risk detection: each user's
// recent sign-ins, the failures of accounts and networks, and users' risk
// levels, all in the store. It hands an attempt and that history to the
// pure detectors of package risk, records what they find, and raises,
// dismisses and remediates users' risk; a user whose risk reaches high has
// their sessions and tokens revoked.
//
// Package risk stays pure (no store, no HTTP); this package is the one
// that reads requests and keeps records for it. It declares the narrow
// interfaces it needs from the store and the rest of the server, and the
// wiring in package app fills them from the configuration.
package riskservice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stepgate/stepgate/internal/geoip"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
)

// Store is what the service keeps and reads: its history and users' risk
// as key/value records, and accounts by name.
type Store interface {
	GetKV(ctx context.Context, key string) (store.KVEntry, error)
	CreateKV(ctx context.Context, key string, value []byte, expiresAt time.Time) (store.KVEntry, error)
	CreateKVWithin(ctx context.Context, key string, value []byte, expiresAt time.Time, quotas ...store.Quota) (store.KVEntry, error)
	UpdateKV(ctx context.Context, key string, fn func([]byte) ([]byte, error)) (store.KVEntry, error)
	GetUserByName(ctx context.Context, username string) (store.User, error)
	GetUser(ctx context.Context, id string) (store.User, error)
	GetSession(ctx context.Context, id string) (store.Session, error)
}

// Locator places an address (a GeoIP database).
type Locator interface {
	Lookup(ip netip.Addr) (geoip.Location, error)
}

// Revoker ends a user's sessions and tokens.
type Revoker interface {
	RevokeUser(ctx context.Context, userID, reason string) error
}

// Detections counts detections by reason and level (the metrics).
type Detections interface {
	Detection(reason, level string)
}

// IPList is one file of networks to flag, re-read when it changes.
type IPList struct {
	Name  string
	File  string
	Level risk.Level
	// Key names where the list is configured ("risk.ip_lists[0]"), so an
	// error says which entry to fix.
	Key string
}

// Options configure a Service. Store is required; every other dependency
// may be left out.
type Options struct {
	// Detectors configure the pure detectors. IP lists given here are
	// fixed; those of IPLists are files, added to them.
	Detectors risk.Config
	// IPLists are read at New and again by ReloadChangedLists.
	IPLists []IPList
	// LowAgeOut is how long a low user risk lasts.
	LowAgeOut time.Duration
	Store     Store
	// GeoIP places sign-ins for travel and country detections; none
	// without it.
	GeoIP Locator
	// ClientIP names the client's address; the peer's address when nil
	// (no proxy is trusted to tell another).
	ClientIP func(*http.Request) netip.Addr
	// Revoker ends sessions and tokens when a user's risk reaches high.
	Revoker Revoker
	Metrics Detections
	Log     *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service assesses sign-ins with the pure detectors of package risk over a
// history kept in the store, and keeps users' risk.
type Service struct {
	// engine is swapped whole when an IP list file changes.
	engine    atomic.Pointer[risk.Engine]
	base      risk.Config // without the IP list files
	lists     []IPList
	listsMu   sync.Mutex // guards listsSeen
	listsSeen string     // what the files looked like when read
	kv        Store
	geo       Locator
	clientIP  func(*http.Request) netip.Addr
	lowAgeOut time.Duration
	revoker   Revoker
	metrics   Detections
	log       *slog.Logger
	now       func() time.Time
	// signInLog writes reported detections to the sign-in log; set
	// while the server is built, before it serves.
	signInLog SignInLog
	// subscribers are told of each reported detection; set while the
	// server is built, before it serves.
	subscribers []func(userID string)
	// keyQuota bounds the idempotency keys kept.
	keyQuota store.Quota

	// mu guards userRisk, recent answers of UserRisk: every request the
	// gateway decides asks, and the answer changes rarely.
	mu       sync.Mutex
	userRisk map[string]cachedRisk
}

// New builds the service and reads its IP lists.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("riskservice: a store is required")
	}
	k := &Service{base: o.Detectors, lists: o.IPLists, kv: o.Store, geo: o.GeoIP, clientIP: o.ClientIP,
		lowAgeOut: o.LowAgeOut, revoker: o.Revoker, metrics: o.Metrics, log: o.Log, now: o.Now,
		userRisk: map[string]cachedRisk{}, keyQuota: detectionKeys.Quota(maxKeys, maxKeyBytes)}
	if k.clientIP == nil {
		k.clientIP = httpx.ClientIP{}.Of
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.now == nil {
		k.now = time.Now
	}
	if err := k.loadLists(); err != nil {
		return nil, err
	}
	return k, nil
}

// loadLists reads the IP list files and installs an engine with them.
func (k *Service) loadLists() error {
	rc := k.base
	// A copy: appending to the base's own lists would let reloads share,
	// and pile up, one backing array.
	rc.IPLists = slices.Clone(k.base.IPLists)
	for _, l := range k.lists {
		f, err := os.Open(l.File) //nolint:gosec // the operator names the file
		if err != nil {
			return fmt.Errorf("%s.file: %w", l.Key, err)
		}
		list, err := risk.ParseIPList(l.Name, l.Level, f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", l.Key, err)
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

func (k *Service) setSeen(s string) {
	k.listsMu.Lock()
	k.listsSeen = s
	k.listsMu.Unlock()
}

func (k *Service) seen() string {
	k.listsMu.Lock()
	defer k.listsMu.Unlock()
	return k.listsSeen
}

// listsStamp describes the list files' sizes and modification times.
func (k *Service) listsStamp() string {
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
func (k *Service) ReloadChangedLists(ctx context.Context) error {
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
func (k *Service) attempt(r *http.Request, userID string, success bool) risk.SignIn {
	ip := k.clientIP(r)
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

// Failed records a failed sign-in for username. An unknown username
// still counts toward spray from its network.
func (k *Service) Failed(r *http.Request, username string) {
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
		err = k.appendTo(r.Context(), userFailAppend.At(id), in, maxFailuresKept, failureHistoryKeep)
	}
	if err == nil {
		err = k.appendTo(r.Context(), netFailAppend.At(netID(network(in.IP))...), in, maxFailuresKept, failureHistoryKeep)
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
func (k *Service) SignedIn(r *http.Request, u store.User, pw, deviceID string) (string, []risk.Detection) {
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
		if k.metrics != nil {
			k.metrics.Detection(d.Reason, d.Level.String())
		}
		k.log.InfoContext(ctx, "sign-in risk detected", "user", u.Username, "level", d.Level.String(), "reason", d.Reason, "evidence", d.Evidence)
	}
	if a.SignInRisk == risk.None {
		if err := k.appendTo(ctx, recentAppend.At(u.ID), in, maxRecentSignIns, riskHistoryKeep); err != nil {
			k.log.WarnContext(ctx, "record sign-in for risk", "err", err)
		}
		return "", nil
	}
	return a.SignInRisk.String(), a.Detections
}

// Remediated records that a risky sign-in's user completed the further
// proof a policy asked for: the sign-in joins the history, so the place
// and device are familiar next time.
func (k *Service) Remediated(r *http.Request, s store.Session) {
	if len(s.Events) == 0 || s.Events[0].Risk == "" {
		return
	}
	in := k.attempt(r, s.UserID, true)
	in.Time = s.Events[0].Time
	if err := k.appendTo(r.Context(), recentAppend.At(s.UserID), in, maxRecentSignIns, riskHistoryKeep); err != nil {
		k.log.WarnContext(r.Context(), "record remediated sign-in", "err", err)
		return
	}
	k.log.InfoContext(r.Context(), "sign-in risk remediated", "user_id", s.UserID, "level", s.Events[0].Risk)
}
