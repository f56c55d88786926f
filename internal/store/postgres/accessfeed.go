package postgres

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

// accessChannel is the channel migration 0009's triggers notify on every
// write that can end access already granted.
const accessChannel = "stepgate_access"

// accessFeedApp names the listening connection in pg_stat_activity.
const accessFeedApp = "stepgate-access-feed"

// Feed timings: the listening connection proves it is alive at least
// every heartbeat (a notification or a ping), and the feed vouches for
// its mark for trust after the last proof. A connection that died
// without a word (a dropped route, a frozen server) is distrusted
// within trust, not when TCP gives up minutes later.
const (
	defaultHeartbeat = time.Second
	defaultTrust     = 3 * time.Second
	maxRetry         = 5 * time.Second
)

var _ sqlstore.AccessFeed = (*accessFeed)(nil)

// accessFeed is the access mark of a node sharing PostgreSQL with
// others: it counts the notifications of channel stepgate_access on a
// dedicated connection (pgx's WaitForNotification). It starts listening
// on the first Mark, so commands that only open the store never
// connect twice. Whenever it (re)starts listening or renews a trust
// that had lapsed, it raises the count first: whatever was written
// while nobody listened is taken to have changed.
type accessFeed struct {
	cfg       *pgx.ConnConfig
	heartbeat time.Duration
	trust     time.Duration
	// start is the base of trustedUntil, a monotonic time.
	start time.Time

	count atomic.Uint64
	// trustedUntil is how long after start the feed vouches for count;
	// zero while it does not.
	trustedUntil atomic.Int64

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newAccessFeed(cfg *pgx.ConnConfig, heartbeat, trust time.Duration) *accessFeed {
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = accessFeedApp
	ctx, cancel := context.WithCancel(context.Background())
	return &accessFeed{cfg: cfg, heartbeat: heartbeat, trust: trust, start: time.Now(), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// Mark returns the count and whether the feed vouches for it now. The
// trust is read before the count, and the listener raises the count
// before it renews a lapsed trust, so a caller never pairs a renewed
// trust with a count from before the gap.
func (f *accessFeed) Mark() (uint64, bool) {
	f.once.Do(func() { go f.run() })
	until := f.trustedUntil.Load()
	n := f.count.Load()
	return n, until != 0 && int64(time.Since(f.start)) < until
}

// Close stops listening.
func (f *accessFeed) Close() error {
	f.cancel()
	f.once.Do(func() { close(f.done) }) // never started
	<-f.done
	return nil
}

// run listens until Close, reconnecting with a growing pause after a
// failure; while it is not listening the feed vouches for nothing.
func (f *accessFeed) run() {
	defer close(f.done)
	wait := 100 * time.Millisecond
	for f.ctx.Err() == nil {
		listened := f.listen(f.ctx)
		f.trustedUntil.Store(0)
		if listened {
			wait = 100 * time.Millisecond
		}
		select {
		case <-f.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetry)
	}
}

// listen holds one listening connection until it fails, and reports
// whether it got as far as listening.
func (f *accessFeed) listen(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, f.trust)
	conn, err := pgx.ConnectConfig(cctx, f.cfg)
	cancel()
	if err != nil {
		return false
	}
	defer func() { _ = conn.Close(context.Background()) }()
	lctx, cancel := context.WithTimeout(ctx, f.trust)
	_, err = conn.Exec(lctx, "LISTEN "+accessChannel)
	cancel()
	if err != nil {
		return false
	}
	f.vouch()
	for {
		wctx, cancel := context.WithTimeout(ctx, f.heartbeat)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			f.count.Add(1)
		case ctx.Err() != nil:
			return true
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			// Quiet for a heartbeat: prove the connection still answers
			// and still listens. A ping alone would vouch for a session
			// whose LISTEN is gone (an UNLISTEN or DISCARD ALL, or a
			// transaction-mode pooler handing it another server
			// connection), which would trust the cache while no
			// revocation can reach it.
			pctx, cancel := context.WithTimeout(ctx, f.heartbeat)
			ok, err := stillListening(pctx, conn)
			cancel()
			if err != nil || !ok {
				return true
			}
		default:
			return true
		}
		f.vouch()
	}
}

// vouch renews the trust after a proof that the connection is alive;
// a trust that had lapsed is renewed only after raising the count.
func (f *accessFeed) vouch() {
	now := int64(time.Since(f.start))
	if until := f.trustedUntil.Load(); until == 0 || now >= until {
		f.count.Add(1)
	}
	f.trustedUntil.Store(now + int64(f.trust))
}

// stillListening reports whether conn's server session listens on the
// access channel.
func stillListening(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var n int
	// The simple protocol: no prepared statement for a DISCARD ALL to
	// take away, nothing for a pooler to route apart.
	err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_listening_channels() AS c WHERE c = $1", pgx.QueryExecModeSimpleProtocol, accessChannel).Scan(&n)
	return n == 1, err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
