package dbgate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// A statement that needs more proof than the session's token carries is
// held, not refused: the gateway asks the OpenID Provider to hold it for
// the session's user, tells the client in a NOTICE (which psql prints at
// once) where to approve it, and waits. The user opens the link in a
// browser, signs in as the same user and proves what the statement's
// policies ask for; the gateway, polling, gets that browser session's
// proofs, judges the statement again with them, and runs it. The
// client just pauses, and nothing is retyped. No proof within the wait,
// a denial, or a cancel request from the client ends the wait with an
// error in the statement's place, which leaves the transaction as any
// error would.

// StepUps hold statements for their users' approval (the OpenID
// Provider's held statements).
type StepUps interface {
	HoldStatement(ctx context.Context, h access.HeldStatement, lifetime time.Duration) (access.HoldTicket, error)
	HeldAnswer(ctx context.Context, handle string) (access.HoldAnswer, error)
	ReleaseHeld(ctx context.Context, t access.HoldTicket)
}

// Held statements.
const (
	// DefaultStepUpWait is how long a statement waits for its proof.
	DefaultStepUpWait = 2 * time.Minute
	// heldPoll is how often a waiting statement asks for its answer.
	heldPoll = 250 * time.Millisecond
	// heldGrace keeps a hold past the statement's wait, so the gateway's
	// own timer, not the hold's expiry, ends an unanswered wait.
	heldGrace = 10 * time.Second
	// maxExtraProofs bounds the proofs a session keeps from approvals.
	maxExtraProofs = 32
	// codeQueryCanceled is what a cancelled wait answers, as PostgreSQL
	// answers a cancelled statement.
	codeQueryCanceled = "57014" // query_canceled
)

// proofs is what a statement is judged on beyond the token: the proofs
// approvals gave the session, and, for a single-use step-up, the point
// before which no proof counts.
type proofs struct {
	extra []store.AuthEvent
	after time.Time
}

// singleUseAfter is the point a single-use step-up counts proofs from:
// the second the statement arrived in, since a token's proofs carry
// whole seconds (the provider passes on only the approval's proofs made
// after the exact moment).
func singleUseAfter(arrived time.Time) time.Time {
	return arrived.Truncate(time.Second).Add(-time.Nanosecond)
}

// holdable reports whether j is a challenge the user can meet in the
// browser while the statement waits.
func (s *Server) holdable(j judgement) bool {
	return s.StepUps != nil && j.verdict.Outcome == policy.OutcomeChallenge && !j.tokenRefused
}

// hold holds the statement of j until its user approves it, and returns
// the judgement to act on: the statement judged again with the approval's
// proofs, or a refusal.
func (ss *session) hold(ctx context.Context, f sqlclass.Facts, j judgement, arrived time.Time) judgement {
	s := ss.s
	h := access.HeldStatement{
		UserID: ss.ident.Load().user.ID, Database: s.db.Name, Contexts: j.contexts,
		Statement: j.req.Statement, From: ss.c.addr.String(),
	}
	if s.db.SingleUse {
		h.ProofsAfter = arrived
	}
	// A cancel request that came before the hold began was for what ran
	// before; one that comes from here on abandons this wait.
	ss.drainWake()
	t, err := s.StepUps.HoldStatement(ctx, h, s.db.StepUpWait+heldGrace)
	if err != nil {
		s.Log.Warn("hold a statement for its step-up", "database", s.db.Name, "err", err)
		j.refusal = errorResponse(codeInvalidAuthorization, s.challengeMessage(j)+"; the gateway could not hold it for a step-up now, try again in a minute", "")
		return j
	}
	defer s.StepUps.ReleaseHeld(ctx, t)
	ss.notice(heldNotice(s.challengeMessage(j), t, s.db.StepUpWait))
	ans, no := ss.awaitAnswer(ctx, t)
	if ans.State != access.HoldApproved {
		j.verdict.Reason, j.refusal = no.code, no.err
		return j
	}
	extra := access.TokenEvents(ans.Proofs)
	p := proofs{extra: append(append([]store.AuthEvent(nil), ss.extra...), extra...)}
	if s.db.SingleUse {
		p = proofs{extra: extra, after: singleUseAfter(arrived)}
	}
	next := s.judge(ss, f, p)
	if next.verdict.Outcome == policy.OutcomeAllow && !s.db.SingleUse {
		ss.keepProofs(extra)
	}
	if next.verdict.Outcome == policy.OutcomeChallenge {
		next.verdict.Reason = reason.StepUpRefused
		next.refusal = errorResponse(codeInvalidAuthorization, "the proof given in the browser does not meet what this statement needs ("+s.challengeMessage(next)+"); the statement did not run", "")
	}
	return next
}

// awaitAnswer polls the held statement until it is answered, its time
// runs out, the client cancels it or hangs up, or the gateway closes;
// anything but an approval comes with the refusal to answer in the
// statement's place.
func (ss *session) awaitAnswer(ctx context.Context, t access.HoldTicket) (access.HoldAnswer, heldRefusal) {
	s := ss.s
	timeout := time.NewTimer(s.db.StepUpWait)
	defer timeout.Stop()
	tick := time.NewTicker(heldPoll)
	defer tick.Stop()
	gone := access.HoldAnswer{State: access.HoldGone}
	for {
		select {
		case <-timeout.C:
			return gone, heldRefusal{reason.StepUpTimedOut, timedOut(s.db.StepUpWait)}
		case <-ss.wake:
			return gone, heldRefusal{reason.StepUpCancelled, errorResponse(codeQueryCanceled,
				"canceling statement due to user request: it was waiting for a step-up and did not run", "")}
		case <-ctx.Done():
			return gone, heldRefusal{reason.StepUpCancelled, errorResponse(codeAdminShutdown, "the gateway is shutting down; the statement did not run", "")}
		case <-tick.C:
		}
		if hungUp(ss.c.conn) {
			return gone, heldRefusal{reason.StepUpCancelled, errorResponse(codeQueryCanceled,
				"the client disconnected while its statement waited for a step-up; the statement did not run", "")}
		}
		ans, err := s.StepUps.HeldAnswer(ctx, t.Handle)
		if err != nil {
			s.Log.Warn("poll a held statement", "database", s.db.Name, "err", err)
			continue
		}
		switch ans.State {
		case access.HoldApproved:
			return ans, heldRefusal{}
		case access.HoldDenied:
			return ans, heldRefusal{reason.StepUpRefused, errorResponse(codeInvalidAuthorization, "refused in the browser ("+ans.Why+"); the statement did not run", "")}
		case access.HoldGone:
			// The hold outlives the wait (heldGrace), so this is a hold
			// lost another way (collected elsewhere, removed): the
			// statement waited in vain, as on a timeout.
			return ans, heldRefusal{reason.StepUpTimedOut, timedOut(s.db.StepUpWait)}
		}
	}
}

// timedOut is the refusal of a statement whose wait ended unanswered.
func timedOut(wait time.Duration) *pgproto3.ErrorResponse {
	return errorResponse(codeInvalidAuthorization,
		fmt.Sprintf("no proof came within %s, so the statement did not run: send it again to get a new code", wait), "")
}

// heldRefusal is why a held statement did not run.
type heldRefusal struct {
	code reason.Code
	err  *pgproto3.ErrorResponse
}

// heldNotice tells the client where to approve its statement.
func heldNotice(need string, t access.HoldTicket, wait time.Duration) *pgproto3.NoticeResponse {
	return &pgproto3.NoticeResponse{
		Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "01000",
		Message: "Stepgate: " + need + ". To run it, approve it at " + t.Link,
		Detail:  "Code " + t.UserCode + ". The statement waits up to " + wait.String() + " and runs as soon as you approve it.",
		Hint:    "Open the link in a browser where you can sign in as yourself. Cancel the statement (Ctrl+C in psql) to stop waiting.",
	}
}

// notice sends n to the client now, between whatever the upstream's
// answers are being relayed.
func (ss *session) notice(n *pgproto3.NoticeResponse) {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.c.be.Send(n)
	_ = ss.c.be.Flush()
}

// drainWake forgets a cancel request that came before the wait began: it
// was for what ran before.
func (ss *session) drainWake() {
	select {
	case <-ss.wake:
	default:
	}
}

// keepProofs adds an approval's proofs to the session's, for the
// statements after it: the policies' freshness rules still judge them.
func (ss *session) keepProofs(extra []store.AuthEvent) {
	ss.extra = append(ss.extra, extra...)
	if n := len(ss.extra); n > maxExtraProofs {
		ss.extra = ss.extra[n-maxExtraProofs:]
	}
}

// watch checks the session's token again every second while the session
// lasts, and ends the session at once when the token is revoked, its
// user disabled or a role it claims ended: an idle connection does not
// outlive its revocation by more than a second. An expired token ends
// nothing here: the next statement is refused and says to sign in again.
func (ss *session) watch(done <-chan struct{}) {
	t := time.NewTicker(reverifyEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if expired(ss.ident.Load(), ss.s.Now()) {
			continue
		}
		if why := ss.reverify(); why != "" {
			ss.terminate(why)
			return
		}
	}
}

// terminate ends the session with a FATAL error saying why.
func (ss *session) terminate(why string) {
	ss.s.Log.Info("database session ended: its token no longer holds", "database", ss.s.db.Name, "user", ss.ident.Load().user.Username, "why", why)
	ss.wmu.Lock()
	ss.c.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: codeInvalidAuthorization,
		Message: why + "; the session was ended"})
	_ = ss.c.be.Flush()
	ss.wmu.Unlock()
	ss.c.conn.Close()
	ss.up.Close()
}

func expired(id *identity, now time.Time) bool {
	exp := id.claims.Expiry
	return exp != nil && !now.Before(exp.Time())
}
