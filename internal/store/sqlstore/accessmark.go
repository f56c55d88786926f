package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/stepgate/stepgate/internal/store"
)

var _ store.AccessWatch = (*DB)(nil)

// AccessFeed is a backend's own source of the access mark, for a
// database whose nodes learn of each other's writes by notification
// (PostgreSQL's LISTEN/NOTIFY) instead of reading a counter.
type AccessFeed interface {
	// Mark is the number of changes seen, and whether the feed is
	// listening now and has been since it last raised the number.
	Mark() (uint64, bool)
	Close() error
}

// accessMark is the access mark's state.
type accessMark struct {
	// local counts this process's own writes that can end access: they
	// count at once, before any notification about them comes back.
	local atomic.Uint64
	// feed replaces the counter table when set (SetAccessFeed).
	feed AccessFeed
	// once prepares stmt, the read of the counter the database's
	// triggers raise (migration access_mark).
	once sync.Once
	stmt *sql.Stmt
	err  error
}

// SetAccessFeed makes f the source of AccessMark; Close closes it.
func (s *DB) SetAccessFeed(f AccessFeed) { s.mark.feed = f }

// AccessMark implements store.AccessWatch: this process's own count of
// such writes plus the database's (the feed's where one is set). Both
// only grow, so their sum changes whenever either does.
func (s *DB) AccessMark(ctx context.Context) (uint64, bool) {
	local := s.mark.local.Load()
	if s.mark.feed != nil {
		n, ok := s.mark.feed.Mark()
		return local + n, ok
	}
	// The counter is read every time: no cheaper signal (a kernel
	// report of writes to the files) orders after the commit it reports.
	n, ok := s.readCounter(ctx)
	return local + n, ok
}

// readCounter reads the counter the database's triggers raise.
func (s *DB) readCounter(ctx context.Context) (uint64, bool) {
	s.mark.once.Do(func() {
		s.mark.stmt, s.mark.err = s.db.PrepareContext(context.WithoutCancel(ctx), "SELECT n FROM access_mark WHERE id = 1")
	})
	if s.mark.err != nil {
		return 0, false
	}
	var n uint64
	if err := s.mark.stmt.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, false
	}
	return n, true
}

// accessKVPrefixes are the key/value namespaces whose writes can end
// access already granted (the deny list of access tokens, grants,
// not-before times, the clients tokens were issued to); the database's
// triggers name the same ones.
var accessKVPrefixes = []string{"oidc/revoked/", "oidc/grant/", "revoke/not-before/", "oidc/clients/"}

// accessChanged counts a write of this process that can end access.
func (s *DB) accessChanged() { s.mark.local.Add(1) }

// accessKVChanged counts a write to key when its namespace is one of
// accessKVPrefixes.
func (s *DB) accessKVChanged(key string) {
	for _, p := range accessKVPrefixes {
		if strings.HasPrefix(key, p) {
			s.accessChanged()
			return
		}
	}
}

// closeAccessMark releases what AccessMark holds.
func (s *DB) closeAccessMark() error {
	if s.mark.stmt != nil {
		_ = s.mark.stmt.Close()
	}
	if s.mark.feed != nil {
		return s.mark.feed.Close()
	}
	return nil
}
