package audit

import (
	"net/netip"
	"sync"
	"time"
)

// AnonymousLimit bounds how many sign-in log entries of clients that are
// not signed in are written, per address and in all, in each window.
//
// Every failed or throttled sign-in and every request of someone not
// signed in that is sent to sign in makes an entry, kept for the log's
// retention. Without a bound, one client looping on the sign-in form
// (throttled attempts are logged too) or on an authorization link writes
// as fast as the database takes it, for a month. Entries that name a
// signed-in user are never limited. An address that exceeds its share
// still has its first entries of each window logged, so the flood itself
// is visible; the rest are counted, not stored.
//
// The counts are per node and held in memory: the bound is what one node
// writes, and the table holds at most total addresses.
type AnonymousLimit struct {
	perAddress, total int
	window            time.Duration
	now               func() time.Time

	mu         sync.Mutex // guards the fields below
	start      time.Time
	byAddress  map[netip.Prefix]int
	written    int
	suppressed int
}

// NewAnonymousLimit allows perAddress entries an address (an IPv6 /64)
// and total in all, each window.
func NewAnonymousLimit(perAddress, total int, window time.Duration, now func() time.Time) *AnonymousLimit {
	if now == nil {
		now = time.Now
	}
	return &AnonymousLimit{perAddress: perAddress, total: total, window: window, now: now, byAddress: map[netip.Prefix]int{}}
}

// Allow reports whether an anonymous entry from ip may be written. When it
// may not, first says whether it is the window's first one refused, for a
// single warning.
func (l *AnonymousLimit) Allow(ip string) (ok, first bool) {
	key := addressKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := l.now(); now.Sub(l.start) >= l.window || now.Before(l.start) {
		l.start, l.written, l.suppressed = now, 0, 0
		clear(l.byAddress)
	}
	if l.written >= l.total || l.byAddress[key] >= l.perAddress {
		l.suppressed++
		return false, l.suppressed == 1
	}
	l.byAddress[key]++
	l.written++
	return true, false
}

// addressKey groups an address with its neighbours one client controls:
// an IPv6 /64 is one subscriber's. An address that does not parse is
// grouped with the others that do not.
func addressKey(ip string) netip.Prefix {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
