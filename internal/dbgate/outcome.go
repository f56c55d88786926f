package dbgate

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/audit"
)

// The sign-in log entry of a logged statement is written before the
// statement is sent (a statement never runs unrecorded), and amended
// once its answer is known, with the rows it returned or changed, how
// long the database took and the error that stopped it.
//
// Answers come back in the order statements were sent. A simple Query is
// a cycle of its own; every CommandComplete of it counts. In the
// extended protocol each Execute sent ends in exactly one of
// CommandComplete, EmptyQueryResponse or PortalSuspended, unless an
// error ends its cycle first; so the n-th such answer of a cycle is the
// n-th Execute's. Only logged statements are followed: routine traffic
// pays one atomic load per answer.

// outcome follows one logged statement's answer.
type outcome struct {
	cycle int
	// ordinal is, for an Execute, its place among the Executes sent in
	// its cycle (from 1); 0 for a simple Query.
	ordinal int
	entry   audit.SignIn
	start   time.Time
	rows    int64
	state   string
}

// follow notes that the statement just judged and logged as e is being
// sent: a simple Query, or an Execute of the current cycle.
func (ss *session) follow(e audit.SignIn, simple bool) {
	if ss.s.AmendSignIn == nil {
		return
	}
	o := outcome{cycle: ss.current(), entry: e, start: time.Now()}
	if !simple {
		o.ordinal = ss.executes
	}
	ss.mu.Lock()
	ss.outcomes = append(ss.outcomes, o)
	ss.mu.Unlock()
	ss.following.Add(1)
}

// answered counts an upstream message towards the followed statements;
// the upstream reader calls it for every message it relays.
func (ss *session) answered(msg pgproto3.BackendMessage) {
	switch msg.(type) {
	case *pgproto3.CommandComplete, *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
		ss.completions++
	case *pgproto3.ReadyForQuery:
		defer func() { ss.completions = 0 }()
	case *pgproto3.ErrorResponse:
	default:
		return
	}
	if ss.following.Load() == 0 {
		return
	}
	ss.mu.Lock()
	done := ss.settleOutcomes(msg)
	ss.mu.Unlock()
	for _, o := range done {
		ss.amend(o)
	}
}

// settleOutcomes applies msg, an answer of cycle ss.done+1, to the
// followed statements and returns those now finished.
func (ss *session) settleOutcomes(msg pgproto3.BackendMessage) []outcome {
	cycle := ss.done + 1
	var done []outcome
	keep := ss.outcomes[:0]
	for _, o := range ss.outcomes {
		finished := false
		if o.cycle == cycle {
			finished = o.apply(msg, ss.completions)
		} else if o.cycle < cycle {
			finished = true // its cycle ended without a word for it
		}
		if finished {
			done = append(done, o)
		} else {
			keep = append(keep, o)
		}
	}
	ss.outcomes = keep
	for range done {
		ss.following.Add(-1)
	}
	return done
}

// apply reads one answer of o's cycle; completions counts the Execute
// answers of the cycle so far. It reports whether o is finished.
func (o *outcome) apply(msg pgproto3.BackendMessage, completions int) bool {
	switch m := msg.(type) {
	case *pgproto3.CommandComplete:
		if o.ordinal == 0 {
			o.rows += rowsOf(m.CommandTag)
			return false // a simple Query ends at ReadyForQuery
		}
		if completions == o.ordinal {
			o.rows = rowsOf(m.CommandTag)
			return true
		}
	case *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
		return o.ordinal != 0 && completions == o.ordinal
	case *pgproto3.ErrorResponse:
		if o.state == "" {
			o.state = m.Code
			if o.ordinal > completions+1 {
				o.state = "skipped" // an earlier error of the pipeline
			}
		}
		return o.ordinal != 0
	case *pgproto3.ReadyForQuery:
		return true
	}
	return false
}

// amend adds o's answer to its sign-in log entry.
func (ss *session) amend(o outcome) {
	st := *o.entry.Statement
	st.Ran = o.state == ""
	st.Rows, st.SQLState = o.rows, o.state
	st.DurationMicros = time.Since(o.start).Microseconds()
	o.entry.Statement = &st
	if err := ss.s.AmendSignIn(context.Background(), o.entry); err != nil {
		ss.s.Log.Warn("add a statement's outcome to the sign-in log", "database", ss.s.db.Name, "err", err)
	}
}

// rowsOf reads the row count at the end of a command tag ("UPDATE 3",
// "INSERT 0 1", "SELECT 20"); 0 when the tag has none.
func rowsOf(tag []byte) int64 {
	i := bytes.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(string(tag[i+1:]), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
