package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit/tally"
	"github.com/stepgate/stepgate/internal/store"
)

// maxSignInPage bounds one ListSignIns answer.
const maxSignInPage = 1000

// Multi-row statements: one round trip and one statement execution for
// many rows, instead of one per row (and one more per policy). The sizes
// keep every statement far inside both engines' parameter limits
// (SQLite 32766, PostgreSQL 65535).
const (
	rowsPerInsert     = 100  // sign_ins rows: 700 parameters
	policiesPerInsert = 1000 // sign_in_policies rows: 2000 parameters
)

func (s *DB) AppendSignIns(ctx context.Context, rows []store.SignIn) error {
	if len(rows) == 0 {
		return nil
	}
	fresh, amends := rows, []store.SignIn(nil)
	if slices.ContainsFunc(rows, func(r store.SignIn) bool { return r.Amend }) {
		fresh = slices.DeleteFunc(slices.Clone(rows), func(r store.SignIn) bool { return r.Amend })
		for _, r := range rows {
			if r.Amend {
				amends = append(amends, r)
			}
		}
	}
	fresh = firstOfEachID(fresh)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		totals := counts{}
		for chunk := range slices.Chunk(fresh, rowsPerInsert) {
			if err := s.appendSignIns(ctx, tx, chunk, totals); err != nil {
				return err
			}
		}
		// The totals change in the transaction that writes the entries:
		// they can never count an entry the log lacks, or miss one.
		if err := s.applyTotals(ctx, tx, totals); err != nil {
			return err
		}
		return s.amendSignIns(ctx, tx, amends)
	})
}

// firstOfEachID returns rows without the repeats of an id already in
// them. Attack: an entry twice in one batch was stored once (the insert
// skips the repeat) but counted once per appearance, so the totals
// disagreed with the log. The first appearance is the one stored and
// counted, as for a repeat in a later batch.
func firstOfEachID(rows []store.SignIn) []store.SignIn {
	seen := make(map[string]bool, len(rows))
	out := rows[:0:0]
	for _, r := range rows {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	return out
}

// amendSignIns replaces the bodies of stored entries, in order, so the
// last amendment of an entry wins.
func (s *DB) amendSignIns(ctx context.Context, tx *sql.Tx, amends []store.SignIn) error {
	for _, r := range amends {
		if _, err := tx.ExecContext(ctx, s.q("UPDATE sign_ins SET body = ? WHERE id = ?"), string(r.Body), r.ID); err != nil {
			return s.classify(err)
		}
	}
	return nil
}

// appendSignIns inserts rows with one statement, then the policies of
// the rows it inserted, and adds those rows to totals.
func (s *DB) appendSignIns(ctx context.Context, tx *sql.Tx, rows []store.SignIn, totals counts) error {
	inserted, err := s.insertSignIns(ctx, tx, rows)
	if err != nil {
		return err
	}
	var pairs []any
	for _, r := range rows {
		// A row skipped as already stored was counted when it was
		// stored: a retried batch must not count it twice.
		if seq, ok := inserted[r.ID]; ok {
			delete(inserted, r.ID) // counted once, however often r.ID appears
			for _, p := range r.Policies {
				pairs = append(pairs, p, seq)
			}
			counters := r.Counters
			if counters == nil {
				counters = tally.Row(r)
			}
			totals.add(floorHour(micros(r.Time)), r.App, counters, 1)
		}
	}
	for chunk := range slices.Chunk(pairs, 2*policiesPerInsert) {
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO sign_in_policies (policy, sign_in_seq) VALUES "+
			placeholders(len(chunk)/2, 2)+" ON CONFLICT DO NOTHING"), chunk...); err != nil {
			return s.classify(err)
		}
	}
	return nil
}

// insertSignIns inserts rows and returns the seq of each one it
// inserted, by id. RETURNING names only those: a row whose id is already
// stored (an earlier try of this batch) is skipped, and so are its
// policies, so a retried batch writes each entry once.
func (s *DB) insertSignIns(ctx context.Context, tx *sql.Tx, rows []store.SignIn) (map[string]int64, error) {
	args := make([]any, 0, 7*len(rows))
	for _, r := range rows {
		args = append(args, r.ID, micros(r.Time), r.UserID, r.App, r.Decision, r.StatementClass, string(r.Body))
	}
	rs, err := tx.QueryContext(ctx, s.q("INSERT INTO sign_ins (id, at, user_id, app, decision, statement_class, body) VALUES "+
		placeholders(len(rows), 7)+" ON CONFLICT (id) DO NOTHING RETURNING id, seq"), args...)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rs.Close()
	inserted := make(map[string]int64, len(rows))
	for rs.Next() {
		var id string
		var seq int64
		if err := rs.Scan(&id, &seq); err != nil {
			return nil, err
		}
		inserted[id] = seq
	}
	return inserted, s.classify(rs.Err())
}

// marks is n placeholders: ?, ?, ?
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// placeholders is n rows of width placeholders each: (?, ?), (?, ?)
func placeholders(n, width int) string {
	return strings.TrimSuffix(strings.Repeat("("+marks(width)+"), ", n), ", ")
}

func (s *DB) ListSignIns(ctx context.Context, q store.SignInQuery) ([]store.SignIn, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxSignInPage {
		limit = maxSignInPage
	}
	page, args := signInPage(q, limit)
	// The page's seqs are chosen first, from the indexes alone, and only
	// its rows are read: a filter whose index is not in seq order (a time
	// window) then sorts seqs, not whole entries.
	rs, err := s.db.QueryContext(ctx, s.q("SELECT s.seq, s.id, s.at, s.user_id, s.app, s.decision, s.statement_class, s.body FROM ("+
		page+") page JOIN sign_ins s ON s.seq = page.seq ORDER BY s.seq DESC"), args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []store.SignIn
	for rs.Next() {
		var r store.SignIn
		var at int64
		var body string
		if err := rs.Scan(&r.Seq, &r.ID, &at, &r.UserID, &r.App, &r.Decision, &r.StatementClass, &body); err != nil {
			return nil, err
		}
		r.Time, r.Body = fromMicros(at), []byte(body)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return out, s.loadPolicies(ctx, out)
}

// signInPage is the query for the seqs of the entries q selects, newest
// first, at most limit of them, with its arguments.
func signInPage(q store.SignInQuery, limit int) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	from, seq := "sign_ins", "seq"
	switch {
	case q.Policy != "" && q.UserID == "":
		// Walk the policy's own entries newest first and stop at a page:
		// a policy that applied to one entry in a thousand costs no more
		// than one that applied to all of them.
		from, seq = "sign_in_policies JOIN sign_ins ON seq = sign_in_seq", "sign_in_seq"
		add("policy = ?", q.Policy)
	case q.Policy != "":
		// A user's entries are fewer than any policy's: walk those, and
		// look each one up in the policy's index.
		add("EXISTS (SELECT 1 FROM sign_in_policies WHERE policy = ? AND sign_in_seq = sign_ins.seq)", q.Policy)
	}
	if q.UserID != "" {
		add("user_id = ?", q.UserID)
	}
	if q.App != "" {
		add("app = ?", q.App)
	}
	if q.Decision != "" {
		add("decision = ?", q.Decision)
	}
	if q.Database != "" {
		// A database's name is also its OIDC client's: its statements are
		// the entries of the app that carry a class.
		add("app = ?", q.Database)
		where = append(where, "statement_class <> ''")
	}
	if q.StatementClass != "" {
		add("statement_class = ?", q.StatementClass)
	}
	if !q.Since.IsZero() {
		add("at >= ?", micros(q.Since))
	}
	if !q.Until.IsZero() {
		add("at < ?", micros(q.Until))
	}
	if q.Before > 0 {
		add(seq+" < ?", q.Before)
	}
	query := "SELECT " + seq + " AS seq FROM " + from
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	return query + " ORDER BY " + seq + " DESC LIMIT ?", append(args, limit)
}

// loadPolicies fills in each row's policies.
func (s *DB) loadPolicies(ctx context.Context, rows []store.SignIn) error {
	if len(rows) == 0 {
		return nil
	}
	bySeq := make(map[int64]*store.SignIn, len(rows))
	args := make([]any, len(rows))
	for i := range rows {
		bySeq[rows[i].Seq] = &rows[i]
		args[i] = rows[i].Seq
	}
	rs, err := s.db.QueryContext(ctx, s.q("SELECT sign_in_seq, policy FROM sign_in_policies WHERE sign_in_seq IN ("+
		marks(len(rows))+") ORDER BY policy"), args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		var seq int64
		var policy string
		if err := rs.Scan(&seq, &policy); err != nil {
			return err
		}
		bySeq[seq].Policies = append(bySeq[seq].Policies, policy)
	}
	return rs.Err()
}

func (s *DB) DeleteSignInsBefore(ctx context.Context, t time.Time) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// No entry may be written to the hours being cut while they are:
		// it would be deleted from the log but not from the totals, or
		// the other way round.
		if err := s.lockTotals(ctx, tx); err != nil {
			return err
		}
		cut := micros(t)
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sign_in_policies WHERE sign_in_seq IN
			(SELECT seq FROM sign_ins WHERE at < ?)`), cut); err != nil {
			return err
		}
		// Whole hours go with their totals; the entries of the hour the
		// cut falls in are taken off its totals one by one.
		hour := floorHour(cut)
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM sign_ins WHERE at < ?"), hour)
		if err != nil {
			return err
		}
		whole, err := res.RowsAffected()
		if err != nil {
			return err
		}
		for _, table := range []string{"sign_in_totals", "sign_in_app_totals"} {
			if _, err := tx.ExecContext(ctx, s.q("DELETE FROM "+table+" WHERE hour < ?"), hour); err != nil {
				return err
			}
		}
		part, err := s.deletePartialHour(ctx, tx, hour, cut)
		n = int(whole) + part
		return err
	})
	return n, err
}

// deletePartialHour deletes the entries in [hour, cut) and takes them
// off the totals of hour.
func (s *DB) deletePartialHour(ctx context.Context, tx *sql.Tx, hour, cut int64) (int, error) {
	if cut == hour {
		return 0, nil
	}
	rs, err := tx.QueryContext(ctx, s.q("DELETE FROM sign_ins WHERE at >= ? AND at < ? RETURNING id, app, body"), hour, cut)
	if err != nil {
		return 0, err
	}
	totals := counts{}
	n := 0
	for rs.Next() {
		var row store.SignIn
		var body string
		if err := rs.Scan(&row.ID, &row.App, &body); err != nil {
			_ = rs.Close()
			return 0, err
		}
		row.Body = []byte(body)
		totals.add(hour, row.App, tally.Row(row), -1)
		n++
	}
	if err := rs.Err(); err != nil {
		return 0, err
	}
	if err := s.applyTotals(ctx, tx, totals); err != nil {
		return 0, err
	}
	for _, table := range []string{"sign_in_totals", "sign_in_app_totals"} {
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM "+table+" WHERE hour = ? AND n = 0"), hour); err != nil {
			return 0, err
		}
	}
	return n, nil
}
