package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// maxSignInPage bounds one ListSignIns answer.
const maxSignInPage = 1000

func (s *DB) AppendSignIns(ctx context.Context, rows []store.SignIn) error {
	if len(rows) == 0 {
		return nil
	}
	insertRow := s.q(`INSERT INTO sign_ins (id, at, user_id, app, decision, body)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
	insertPolicy := s.q(`INSERT INTO sign_in_policies (policy, sign_in_id)
		VALUES (?, ?) ON CONFLICT (policy, sign_in_id) DO NOTHING`)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		rowStmt, err := tx.PrepareContext(ctx, insertRow)
		if err != nil {
			return err
		}
		defer rowStmt.Close()
		policyStmt, err := tx.PrepareContext(ctx, insertPolicy)
		if err != nil {
			return err
		}
		defer policyStmt.Close()
		for _, r := range rows {
			res, err := rowStmt.ExecContext(ctx, r.ID, micros(r.Time), r.UserID, r.App, r.Decision, string(r.Body))
			if err != nil {
				return s.classify(err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				continue // already written by an earlier try of this batch
			}
			for _, p := range r.Policies {
				if _, err := policyStmt.ExecContext(ctx, p, r.ID); err != nil {
					return s.classify(err)
				}
			}
		}
		return nil
	})
}

func (s *DB) ListSignIns(ctx context.Context, q store.SignInQuery) ([]store.SignIn, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
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
	if q.Policy != "" {
		add("id IN (SELECT sign_in_id FROM sign_in_policies WHERE policy = ?)", q.Policy)
	}
	if !q.Since.IsZero() {
		add("at >= ?", micros(q.Since))
	}
	if !q.Until.IsZero() {
		add("at < ?", micros(q.Until))
	}
	if q.Before > 0 {
		add("seq < ?", q.Before)
	}
	limit := q.Limit
	if limit <= 0 || limit > maxSignInPage {
		limit = maxSignInPage
	}
	query := "SELECT seq, id, at, user_id, app, decision, body FROM sign_ins"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY seq DESC LIMIT ?"
	args = append(args, limit)
	rs, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []store.SignIn
	for rs.Next() {
		var r store.SignIn
		var at int64
		var body string
		if err := rs.Scan(&r.Seq, &r.ID, &at, &r.UserID, &r.App, &r.Decision, &body); err != nil {
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

// loadPolicies fills in each row's policies.
func (s *DB) loadPolicies(ctx context.Context, rows []store.SignIn) error {
	if len(rows) == 0 {
		return nil
	}
	byID := make(map[string]*store.SignIn, len(rows))
	marks := make([]string, len(rows))
	args := make([]any, len(rows))
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
		marks[i], args[i] = "?", rows[i].ID
	}
	rs, err := s.db.QueryContext(ctx, s.q("SELECT sign_in_id, policy FROM sign_in_policies WHERE sign_in_id IN ("+
		strings.Join(marks, ",")+") ORDER BY policy"), args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		var id, policy string
		if err := rs.Scan(&id, &policy); err != nil {
			return err
		}
		byID[id].Policies = append(byID[id].Policies, policy)
	}
	return rs.Err()
}

func (s *DB) DeleteSignInsBefore(ctx context.Context, t time.Time) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cut := micros(t)
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sign_in_policies WHERE sign_in_id IN
			(SELECT id FROM sign_ins WHERE at < ?)`), cut); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM sign_ins WHERE at < ?"), cut)
		if err != nil {
			return err
		}
		m, err := res.RowsAffected()
		n = int(m)
		return err
	})
	return n, err
}
