package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Kept requests are a resource anyone can ask for: a form posted to a
// signed-in page without a session is kept for after the sign-in. Left
// unbounded, a client posting large forms in a loop fills the disk. So
// every keep is bounded three ways, all counted in the store so that the
// bounds hold across nodes sharing it:
//   - a body cap, smaller for a client with no session;
//   - a number of keeps per client address in each window;
//   - quotas on all kept requests at once (count and stored bytes), of
//     which requests from clients with no session get a smaller share.
//
// A keep refused by any of them gets a page saying what happened and
// what to do, and nothing is stored.

const (
	// anonKeptID marks the id of a request kept for a client with no
	// session, so takeKept finds it under its class's prefix.
	anonKeptID = "a."
)

// keepBudget is what one class of kept request may use.
type keepBudget struct {
	anonymous  bool
	bodyLimit  int64
	perAddress int
	// quota is the class's share; the total quota applies as well.
	quota store.Quota
}

func (g *Gateway) budget(anonymous bool) keepBudget {
	k := g.Options.KeptRequests
	if anonymous {
		return keepBudget{anonymous: true, bodyLimit: int64(k.AnonymousBodyLimit), perAddress: k.AnonymousPerAddress,
			quota: kvspace.GatewayKeptAnonymous.Quota(k.AnonymousMaxCount, int64(k.AnonymousMaxBytes))}
	}
	// Requests of signed-in users are bounded by the total alone.
	return keepBudget{bodyLimit: int64(g.Options.ReplayBodyLimit), perAddress: k.PerAddress,
		quota: kvspace.GatewayKeptUser.Quota(k.MaxCount, int64(k.MaxBytes))}
}

// disabled reports whether the configuration keeps no request of this
// class (a bound of 0).
func (b keepBudget) disabled() bool {
	return b.perAddress <= 0 || b.quota.MaxCount <= 0 || b.quota.MaxBytes <= 0
}

// totalQuota bounds every kept request at once.
func (g *Gateway) totalQuota() store.Quota {
	k := g.Options.KeptRequests
	return store.Quota{Prefix: kvspace.GatewayKept, MaxCount: k.MaxCount, MaxBytes: int64(k.MaxBytes)}
}

// keptAt is where the request kept under id is stored.
func keptAt(id string) kvspace.Ref[[]byte] {
	if strings.HasPrefix(id, anonKeptID) {
		return kvspace.GatewayKeptAnonymous.At(id)
	}
	return kvspace.GatewayKeptUser.At(id)
}

// addressBucket is the unit the per-address limit counts: an IPv4
// address, or an IPv6 /64, which one client usually holds whole.
func addressBucket(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}

// clientAddrOf is the client address the per-address limit counts.
func (g *Gateway) clientAddrOf(r *http.Request) netip.Addr {
	if g.ClientIP != nil {
		return g.ClientIP(r)
	}
	return httpx.ClientIP{}.Of(r)
}

// addressCount is the per-address count of one keep: the counter's
// key and when it ends, and whether the counter is still to be made.
type addressCount struct {
	key   kvspace.Ref[int64]
	end   time.Time
	first bool
}

// allowKeep counts one keep for r's address in the current window and
// reports whether it is within the budget, and if not, how long until
// the window ends.
//
// An address that has a counter is counted at once, before the body is
// read, so concurrent requests from it each count. An address without
// one gets its counter only once a request of it is stored (record):
// the counters are themselves something a client makes the gateway
// store, and this way there are never more of them than kept requests,
// however many addresses a client posts from. (The requests a new
// address sends at the same moment as its first are kept before its
// counter exists: a few over its budget at most, and the quotas hold.)
func (g *Gateway) allowKeep(ctx context.Context, r *http.Request, b keepBudget) (bool, time.Duration, addressCount, error) {
	window := g.Options.KeptRequests.Window
	now := g.Now()
	start := now.Truncate(window)
	class := "user"
	if b.anonymous {
		class = "anon"
	}
	sum := sha256.Sum256([]byte(addressBucket(g.clientAddrOf(r))))
	c := addressCount{key: kvspace.GatewayKeepRate.At(class, hex.EncodeToString(sum[:16]), strconv.FormatInt(start.Unix(), 10)),
		end: start.Add(window)}
	var n int64
	err := c.key.Update(ctx, g.Store, func(v int64) (int64, error) {
		n = v + 1
		return n, nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.first = true
		return true, 0, c, nil
	case err != nil:
		return false, 0, c, err
	}
	return n <= int64(b.perAddress), c.end.Sub(now), c, nil
}

// record makes the counter of an address whose first keep in the
// window was just stored.
func (g *Gateway) record(ctx context.Context, c addressCount) error {
	if !c.first {
		return nil
	}
	err := c.key.Create(ctx, g.Store, 1, c.end)
	if errors.Is(err, store.ErrConflict) {
		// Another of its requests was stored at the same moment.
		err = c.key.Update(ctx, g.Store, func(n int64) (int64, error) { return n + 1, nil })
	}
	return err
}

// warnQuotaFull logs a keep refused by a full quota, at most once a
// minute per node.
func (g *Gateway) warnQuotaFull(r *http.Request, rt *route, b keepBudget, err error) {
	now := g.Now().Unix()
	last := g.quotaWarned.Load()
	if now-last < 60 || !g.quotaWarned.CompareAndSwap(last, now) {
		return
	}
	g.Log.WarnContext(r.Context(), "kept-request quota full: requests are refused until kept ones are replayed or expire",
		"route", rt.name, "anonymous", b.anonymous, "err", err)
}

// keepRefusal is why a request was not kept, as the page tells it.
type keepRefusal struct {
	status     int
	title      string
	message    string
	retryAfter time.Duration
}

func refusedTooLarge(anonymous bool) keepRefusal {
	if anonymous {
		return keepRefusal{http.StatusRequestEntityTooLarge, "Sign in first",
			"You are not signed in, and what you sent is too large to keep while you sign in, so it was not sent. Sign in, then send it once more.", 0}
	}
	return keepRefusal{http.StatusRequestEntityTooLarge, "Too large to keep",
		"This request needs a fresh sign-in, and its content is too large to keep while you give it, so it was not sent. Sign in again, then send it once more.", 0}
}

func refusedOff(anonymous bool) keepRefusal {
	if anonymous {
		return keepRefusal{http.StatusTooManyRequests, "Sign in first",
			"You are not signed in, and this gateway does not keep requests until you are, so what you sent was not sent. Sign in, then send it once more.", 0}
	}
	return keepRefusal{http.StatusTooManyRequests, "Sign in again first",
		"This request needs a fresh sign-in, and this gateway does not keep requests until you give it, so it was not sent. Sign in again, then send it once more.", 0}
}

func refusedRate(wait time.Duration) keepRefusal {
	return keepRefusal{http.StatusTooManyRequests, "Too many requests waiting",
		"Too many requests from your network are already waiting for a sign-in, so this one was not kept or sent. Sign in, then send it again; or wait " + minutes(wait) + " and try again.", wait}
}

func refusedFull() keepRefusal {
	return keepRefusal{http.StatusTooManyRequests, "Too many requests waiting",
		"The gateway is holding as many requests waiting for a sign-in as it can, so this one was not kept or sent. Sign in, then send it again.", keptLifetime}
}

// minutes is a wait as a person reads it.
func minutes(d time.Duration) string {
	m := int((d + time.Minute - 1) / time.Minute)
	if m <= 1 {
		return "a minute"
	}
	return strconv.Itoa(m) + " minutes"
}

var keepRefusedPage = template.Must(template.New("kept").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}}</title></head>
<body><main><h1>{{.Title}}</h1><p role="alert">{{.Message}}</p>
<p><a href="{{.Next}}">Sign in</a></p></main></body></html>
`))

// refuseKeep answers a request that could not be kept: the status and
// words that say what happened and what to do, and a link to sign in
// without it (next). Nothing of the request is stored.
func (g *Gateway) refuseKeep(w http.ResponseWriter, r *http.Request, why keepRefusal, next string) {
	if why.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(why.retryAfter.Seconds()+0.5)))
	}
	if wantsJSON(r) {
		g.refuse(w, r, why.status, why.message)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	// The request's body is not read further: close the connection
	// rather than drain a large upload.
	h.Set("Connection", "close")
	w.WriteHeader(why.status)
	_ = keepRefusedPage.Execute(w, struct{ Title, Message, Next string }{why.title, why.message, next})
}
