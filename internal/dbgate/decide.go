package dbgate

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
)

// Context keys of Database.Contexts.
const (
	ContextClassPrefix = "class:"
	ContextLabelPrefix = "label:"
)

// judgement is the gateway's answer for one statement.
type judgement struct {
	facts    sqlclass.Facts
	labels   []string
	contexts []string
	verdict  access.Verdict
	req      *policy.Request
	snap     *policy.Snapshot
	// refusal, when set, is the error the client gets instead of the
	// statement's result.
	refusal *pgproto3.ErrorResponse
	// guardrail names the built-in rule that refused the statement.
	guardrail string
	// tokenRefused says the token itself no longer holds: no step-up in
	// the session can help, only a new sign-in.
	tokenRefused bool
	// entry is the sign-in log entry written for it, when it was logged.
	entry *audit.SignIn
}

// guardrail returns why a built-in rule refuses facts for the session's
// user, or "".
func (s *Server) guardrail(ss *session, f sqlclass.Facts) string {
	switch {
	case f.CopyProgram:
		// COPY ... TO/FROM PROGRAM runs a shell command as the database
		// server's operating-system user: no policy makes that a query.
		return "COPY ... PROGRAM runs a command on the database server; the gateway never relays it"
	case f.ServerFile:
		return "the statement reads or writes a file on the database server (COPY to or from a file, pg_read_file, lo_import, lo_export); the gateway never relays it"
	case f.Lexing:
		// The gateway pins client_encoding and standard_conforming_strings
		// so that the server reads text as the classifier does.
		return "the gateway keeps client_encoding UTF8 and standard_conforming_strings on; this statement would change how the server reads later text"
	case s.db.RefuseNoWhere && f.NoWhere:
		return "UPDATE and DELETE need a WHERE clause naming a column of their table, and TRUNCATE is refused, on this database"
	}
	return s.needsElevation(ss.ident.Load().user, f, s.Now())
}

// contextsFor lists the authentication contexts facts ask for: those of
// its class and every less sensitive class (unknown asks for them all),
// and those of the labels it hits.
func (s *Server) contextsFor(f sqlclass.Facts, labels []string) []string {
	effective := f.Class
	if f.SetRole && effective < sqlclass.ClassPrivilege {
		// SET ROLE and SET SESSION AUTHORIZATION run the statements after
		// them as another role, which may hold more than the gateway's:
		// a change of privilege, whatever the classifier's class.
		effective = sqlclass.ClassPrivilege
	}
	var out []string
	for key, ctx := range s.db.Contexts {
		switch {
		case strings.HasPrefix(key, ContextClassPrefix):
			class, err := sqlclass.ParseClass(strings.TrimPrefix(key, ContextClassPrefix))
			if err == nil && effective.AtLeast(class) {
				out = append(out, ctx)
			}
		case strings.HasPrefix(key, ContextLabelPrefix):
			if slices.Contains(labels, strings.TrimPrefix(key, ContextLabelPrefix)) {
				out = append(out, ctx)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// judge decides a statement with facts for the session's user, on the
// token's proofs and p's.
func (s *Server) judge(ss *session, f sqlclass.Facts, p proofs) judgement {
	j := judgement{facts: f, labels: sqlclass.Label(f, s.db.Labels)}
	if why := ss.tokenProblem(); why != "" {
		j.verdict = access.Verdict{Outcome: policy.OutcomeBlock, Reason: reason.NewSignInRequired}
		j.refusal = errorResponse(codeInvalidAuthorization, why, "")
		j.tokenRefused = true
		return j
	}
	if why := s.guardrail(ss, f); why != "" {
		j.guardrail = why
		j.verdict = access.Verdict{Outcome: policy.OutcomeBlock, Reason: reason.StatementGuardrail}
		j.refusal = errorResponse(codeInsufficientPrivs, "refused by Stepgate: "+why, "")
		return j
	}
	j.contexts = s.contextsFor(f, j.labels)
	j.snap = s.Policies.Load()
	j.req = ss.request(j.contexts, s.Now(), p)
	j.req.Statement = policyStatement(f, j.labels)
	ask := access.Ask{Snapshot: j.snap, Request: j.req}
	if !p.after.IsZero() && len(j.contexts) > 0 {
		// Single use: only proofs made for this statement count.
		ask.ReaskAfter, ask.Reask = p.after, access.ReaskSingleUse
	}
	// No method source: the user steps up in a browser, whose step-up
	// page offers the methods; here a challenge only says what is
	// missing.
	j.verdict, _ = access.Decide(ask, nil)
	switch j.verdict.Outcome {
	case policy.OutcomeBlock:
		msg := "refused by Stepgate's access policies"
		if j.verdict.BlockedBy != "" {
			msg += " (policy " + j.verdict.BlockedBy + ")"
		}
		j.refusal = errorResponse(codeInsufficientPrivs, msg+": "+string(j.verdict.Reason), "")
	case policy.OutcomeChallenge:
		j.refusal = errorResponse(codeInvalidAuthorization, s.challengeMessage(j), challengeHint(j))
	}
	return j
}

// policyStatement is what policies' conditions see of a statement.
func policyStatement(f sqlclass.Facts, labels []string) policy.Statement {
	class := f.Class
	if f.SetRole && class < sqlclass.ClassPrivilege {
		class = sqlclass.ClassPrivilege // as in contextsFor: a change of role is a change of privilege
	}
	st := policy.Statement{Class: class.String(), Command: commandOf(f), Labels: labels, Modifies: f.Modifies}
	for _, t := range f.Tables {
		st.Tables = append(st.Tables, t.String())
	}
	return st
}

// challengeMessage says which proof the statement needs.
func (s *Server) challengeMessage(j judgement) string {
	var b strings.Builder
	b.WriteString("this statement needs more proof than your token carries")
	if len(j.contexts) > 0 {
		fmt.Fprintf(&b, " (authentication context %s", strings.Join(j.contexts, ", "))
		if len(j.labels) > 0 {
			fmt.Fprintf(&b, " for %s data", strings.Join(j.labels, ", "))
		}
		b.WriteString(")")
	}
	var needs []string
	for _, r := range j.verdict.Missing {
		var ways []string
		for _, n := range r.AnyOf {
			ways = append(ways, n.String())
		}
		needs = append(needs, strings.Join(ways, " or "))
	}
	if len(needs) > 0 {
		fmt.Fprintf(&b, ": missing %s", strings.Join(needs, "; "))
	}
	return b.String()
}

func challengeHint(j judgement) string {
	acr := ""
	if len(j.contexts) > 0 {
		acr = " with acr_values=" + strings.Join(j.contexts, "+")
	}
	return "Get a new access token for this database" + acr + " after proving it, and connect again with it."
}

func errorResponse(code, msg, hint string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: msg, Hint: hint}
}

// StatementFacts is what the sign-in log keeps of a statement: never its
// text or a value, only its shape.
func statementFacts(j judgement, command string) *audit.Statement {
	st := &audit.Statement{
		Command: command, Class: j.facts.Class.String(), Labels: j.labels, Fingerprint: j.facts.Fingerprint,
		Guardrail: j.guardrail,
	}
	for _, t := range j.facts.Tables {
		st.Tables = append(st.Tables, t.String())
	}
	return st
}

// logged reports whether a decision goes to the sign-in log: every
// refusal, and every allow that asked for a context or hit a label or
// that a report-only policy would have refused. Routine allows (a read
// of unlabelled tables) are not written, so the log does not grow by a
// row per statement of a busy application.
func (j judgement) logged() bool {
	return j.verdict.Outcome != policy.OutcomeAllow || len(j.contexts) > 0 || len(j.labels) > 0 || j.verdict.ReportOnlyUnmet > 0
}

// record writes j to the sign-in log when it is logged, and returns the
// entry written; an error means the statement must not run.
func (s *Server) record(ctx context.Context, ss *session, j judgement, command string, took time.Duration) (*audit.SignIn, error) {
	if s.SignIns == nil || !j.logged() {
		return nil, nil
	}
	u := ss.ident.Load().user
	e := audit.SignIn{
		ID: rand.Text(), Time: s.Now().UTC(), Source: "database", UserID: u.ID, Username: u.Username, App: s.db.Name,
		LatencyMicros: took.Microseconds(),
	}
	if j.req != nil && j.snap != nil {
		access.Record(&e, j.snap, j.req, &j.verdict)
	} else {
		e.Decision, e.Reason = j.verdict.Outcome.String(), j.verdict.Reason
		if ss.c.addr.IsValid() {
			e.IP = ss.c.addr.String()
		}
	}
	e.ClientApp = "postgresql"
	e.Statement = statementFacts(j, command)
	if err := s.SignIns(ctx, e); err != nil {
		return nil, err
	}
	return &e, nil
}

// maxCommands bounds the distinct commands a statement is named by; the
// commands are a fixed vocabulary, so only a string made to hold more
// kinds of statement than any script does reaches it.
const maxCommands = 32

// commandOf names a statement's commands, for the log, the approval
// page and the policies (statement.command): "SELECT", or "SELECT; DROP
// TABLE" for several. Each command is named once, in the order it first
// comes: keeping only the first few statements would let nine SELECTs
// push a DROP TABLE out of sight of a policy's
// statement.command.contains("DROP") (the statements condition takes
// the "..." that ends a longer list as every command).
func commandOf(f sqlclass.Facts) string {
	var cmds []string
	for _, st := range f.Statements {
		if slices.Contains(cmds, st.Command) {
			continue
		}
		if len(cmds) == maxCommands {
			cmds = append(cmds, "...")
			break
		}
		cmds = append(cmds, st.Command)
	}
	return strings.Join(cmds, "; ")
}
