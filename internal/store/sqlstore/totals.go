package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit/tally"
	"github.com/stepgate/stepgate/internal/store"
)

// hourMicros is one bucket of the running totals in the log's time unit.
const hourMicros = int64(store.SignInTotalsHour / time.Microsecond)

// totalsPerUpsert bounds one upsert of totals: 5 parameters a row.
const totalsPerUpsert = 1000

// rebuildPage is how many entries a rebuild reads at a time, and
// rebuildFlush how many distinct totals it holds before writing them:
// together they bound its memory whatever the size of the log.
const (
	rebuildPage  = 5000
	rebuildFlush = 50_000
)

// totalKey is one row of sign_in_app_totals, or of sign_in_totals
// when app is empty.
type totalKey struct {
	hour         int64
	app          string
	counter, pol string
}

// counts is a change to the totals, by app, hour, counter and policy.
type counts map[totalKey]int64

func (t counts) add(hour int64, app string, counters []store.SignInCounter, sign int64) {
	for _, c := range counters {
		t[totalKey{hour, app, c.Name, c.Policy}] += sign
	}
}

// floorHour is the start of the hour bucket holding at (micros).
func floorHour(at int64) int64 {
	h := at - at%hourMicros
	if at < 0 && at%hourMicros != 0 {
		h -= hourMicros
	}
	return h
}

// ceilHour is the start of the first bucket at or after at.
func ceilHour(at int64) int64 {
	if h := floorHour(at); h != at {
		return h + hourMicros
	}
	return at
}

// applyTotals writes t into the totals of each app, and its sums over
// apps into the totals of all apps, adding to what is there. The keys go
// in one order in every transaction, so two writers on PostgreSQL take
// the rows' locks in the same order and never deadlock.
func (s *DB) applyTotals(ctx context.Context, tx *sql.Tx, t counts) error {
	all := counts{}
	for k, n := range t {
		all[totalKey{hour: k.hour, counter: k.counter, pol: k.pol}] += n
	}
	if err := s.upsertTotals(ctx, tx, all, "sign_in_totals (hour, counter, policy, n)", "hour, counter, policy"); err != nil {
		return err
	}
	return s.upsertTotals(ctx, tx, t, "sign_in_app_totals (app, hour, counter, policy, n)", "app, hour, counter, policy")
}

// upsertTotals adds t to the table into (with its columns); key names
// its primary key. The totals of all apps are the rows whose app is
// empty in t.
func (s *DB) upsertTotals(ctx context.Context, tx *sql.Tx, t counts, into, key string) error {
	keys := slices.SortedFunc(maps.Keys(t), func(a, b totalKey) int {
		return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.hour, b.hour),
			cmp.Compare(a.counter, b.counter), cmp.Compare(a.pol, b.pol))
	})
	keys = slices.DeleteFunc(keys, func(k totalKey) bool { return t[k] == 0 })
	perApp := strings.HasPrefix(into, "sign_in_app_totals")
	width := 4
	if perApp {
		width = 5
	}
	for chunk := range slices.Chunk(keys, totalsPerUpsert) {
		args := make([]any, 0, width*len(chunk))
		for _, k := range chunk {
			if perApp {
				args = append(args, k.app)
			}
			args = append(args, k.hour, k.counter, k.pol, t[k])
		}
		table, _, _ := strings.Cut(into, " ")
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO "+into+" VALUES "+placeholders(len(chunk), width)+
			" ON CONFLICT ("+key+") DO UPDATE SET n = "+table+".n + excluded.n"), args...); err != nil {
			return s.classify(err)
		}
	}
	return nil
}

// lockTotals keeps other writers of the totals out until tx ends, where
// the dialect needs it.
func (s *DB) lockTotals(ctx context.Context, tx *sql.Tx) error {
	if s.dialect.TotalsLock == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.dialect.TotalsLock)
	return err
}

func (s *DB) SignInTotals(ctx context.Context, q store.SignInTotalsQuery) ([]store.SignInTotal, error) {
	since, until := floorHour(micros(q.Since)), ceilHour(micros(q.Until))
	bucket := hourMicros
	if q.Bucket > store.SignInTotalsHour {
		bucket = int64(q.Bucket.Round(store.SignInTotalsHour) / time.Microsecond)
	}
	// Each hour goes to its bucket in the database: a month of hours
	// comes back as the overview's two dozen buckets.
	query := "SELECT ? + (hour - ?) / ? * ? AS bucket, counter, policy, SUM(n) FROM sign_in_totals WHERE hour >= ? AND hour < ?"
	args := []any{since, since, bucket, bucket, since, until}
	if q.App != "" {
		query = "SELECT ? + (hour - ?) / ? * ? AS bucket, counter, policy, SUM(n) FROM sign_in_app_totals WHERE app = ? AND hour >= ? AND hour < ?"
		args = []any{since, since, bucket, bucket, q.App, since, until}
	}
	rs, err := s.db.QueryContext(ctx, s.q(query+" GROUP BY bucket, counter, policy ORDER BY bucket, counter, policy"), args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []store.SignInTotal
	for rs.Next() {
		var t store.SignInTotal
		var start int64
		if err := rs.Scan(&start, &t.Name, &t.Policy, &t.N); err != nil {
			return nil, err
		}
		if t.N != 0 {
			t.Hour = fromMicros(start)
			out = append(out, t)
		}
	}
	return out, rs.Err()
}

func (s *DB) RebuildSignInTotals(ctx context.Context) (store.SignInRebuild, error) {
	var out store.SignInRebuild
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockTotals(ctx, tx); err != nil {
			return err
		}
		var version int
		err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM sign_in_totals_state").Scan(&version)
		if err != nil || version == store.SignInTotalsVersion {
			return err
		}
		out.Rebuilt = true
		for _, stmt := range []string{"DELETE FROM sign_in_totals", "DELETE FROM sign_in_app_totals", "DELETE FROM sign_in_totals_state"} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		if out.Entries, err = s.countLog(ctx, tx); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q("INSERT INTO sign_in_totals_state (version) VALUES (?)"), store.SignInTotalsVersion)
		return err
	})
	if err != nil {
		return store.SignInRebuild{}, err
	}
	return out, nil
}

// countLog adds every entry of the log to the totals, a page at a time
// in seq order, and returns how many it read.
func (s *DB) countLog(ctx context.Context, tx *sql.Tx) (int, error) {
	t := counts{}
	n := 0
	for after := int64(0); ; {
		read, last, err := s.countPage(ctx, tx, after, t)
		if err != nil {
			return n, err
		}
		n += read
		if len(t) >= rebuildFlush || read < rebuildPage {
			if err := s.applyTotals(ctx, tx, t); err != nil {
				return n, err
			}
			clear(t)
		}
		if read < rebuildPage {
			return n, nil
		}
		after = last
	}
}

// countPage adds up to rebuildPage entries after seq after to t, and
// returns how many it read and the last one's seq.
func (s *DB) countPage(ctx context.Context, tx *sql.Tx, after int64, t counts) (read int, last int64, err error) {
	rs, err := tx.QueryContext(ctx, s.q("SELECT seq, id, at, app, body FROM sign_ins WHERE seq > ? ORDER BY seq LIMIT ?"), after, rebuildPage)
	if err != nil {
		return 0, 0, err
	}
	defer rs.Close()
	for rs.Next() {
		var row store.SignIn
		var at int64
		var body string
		if err := rs.Scan(&last, &row.ID, &at, &row.App, &body); err != nil {
			return 0, 0, err
		}
		row.Body = []byte(body)
		t.add(floorHour(at), row.App, tally.Row(row), 1)
		read++
	}
	return read, last, rs.Err()
}
