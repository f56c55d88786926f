package dbgate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// session relays one signed-in client to its own upstream connection.
//
// Two goroutines share it: the client reader (run) reads the client's
// messages, judges each statement and forwards it; the upstream reader
// (relayUpstream) forwards the upstream's answers to the client, and is
// the only one that writes to the client after sign-in.
//
// A refused statement is never sent. In its place the upstream gets a
// statement that fails to parse and holds the session's random marker;
// the upstream answers it with a syntax error at exactly the point where
// the refused statement's answer would have come, leaving the
// transaction as an error there leaves it (aborted inside a block), and
// the upstream reader swaps that error for the refusal. So answers stay
// in order however the client pipelines its messages.
//
// A cycle is what ends in one ReadyForQuery: a Query, the extended
// protocol's messages up to their Sync, a FunctionCall.
type session struct {
	s      *Server
	c      *client
	cls    *sqlclass.Session
	fe     *pgproto3.Frontend
	up     net.Conn
	marker string
	key    cancelKey
	// ident is the last check of the session's token; the watcher and
	// the client reader both renew it.
	ident atomic.Pointer[identity]
	// wmu serialises writes to the client after sign-in: the upstream
	// reader's relaying, a held statement's NOTICE, the watcher's FATAL.
	wmu sync.Mutex
	// wake carries a cancel request to a statement waiting for a step-up.
	wake chan struct{}

	// Owned by the client reader.
	cycle     int                // cycles sent upstream
	unsettled map[string]int     // statement name → the cycle its Parse or PREPARE was sent in
	distrust  map[string]bool    // statements whose Parse or PREPARE may not have taken effect
	portals   map[string]*portal // portals bound, with what they run
	copyIn    int                // the cycle of a simple-query COPY FROM STDIN under way, or 0
	extra     []store.AuthEvent  // proofs approvals gave the session (not single use)
	executes  int                // Executes sent upstream in the current cycle

	mu       sync.Mutex // guards the fields below, shared with the upstream reader
	changed  *sync.Cond // signalled when done grows
	done     int        // cycles the upstream has finished
	failed   map[int]bool
	refusals []refusal
	broken   bool
	outcomes []outcome // logged statements whose answer is awaited

	// following counts outcomes, so the upstream reader skips the lock
	// when there are none; completions is the upstream reader's own count
	// of the Execute answers of the cycle it is relaying.
	following   atomic.Int32
	completions int
}

// portal is a bound portal: the facts of the statement it runs, as they
// were when it was bound, and the cycles it depends on.
type portal struct {
	facts sqlclass.Facts
	// parseCycle and bindCycle are the cycles its statement's Parse and
	// its Bind were sent in, until they are seen to finish (then 0).
	parseCycle, bindCycle int
}

type refusal struct {
	cycle int
	err   *pgproto3.ErrorResponse
}

// runSession opens the upstream connection, greets the client and
// relays until either side ends.
func (s *Server) runSession(ctx context.Context, c *client) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.refuseStartup(c, codeTooManyConnections, "the gateway has as many connections open to this database as it may; try again later")
		return
	}
	hc, err := s.connectUpstream(ctx, c.params)
	if err != nil {
		s.Log.Warn("connect to upstream database", "database", s.db.Name, "err", err)
		s.refuseStartup(c, codeConnectionFailure, "the gateway could not reach the database; try again later")
		return
	}
	defer hc.Conn.Close()
	ss := &session{
		s: s, c: c, cls: s.Classifier.NewSession(), fe: hc.Frontend, up: hc.Conn, marker: newMarker(),
		unsettled: map[string]int{}, distrust: map[string]bool{}, portals: map[string]*portal{}, failed: map[int]bool{},
		wake: make(chan struct{}, 1),
	}
	if hc.builtinsShadowed {
		s.Log.Warn("the upstream session starts with a search_path that puts pg_catalog after another schema: unqualified functions are judged unknown",
			"database", s.db.Name)
		ss.cls.SearchPathChanged()
	}
	ss.ident.Store(c.signedIn)
	ss.changed = sync.NewCond(&ss.mu)
	ss.key = s.cancels.issue(upstreamKey{pid: hc.PID, secret: hc.SecretKey}, ss.wake)
	defer s.cancels.forget(ss.key)
	c.be.Send(&pgproto3.AuthenticationOk{})
	for k, v := range hc.ParameterStatuses {
		c.be.Send(&pgproto3.ParameterStatus{Name: k, Value: v})
	}
	c.be.Send(&pgproto3.BackendKeyData{ProcessID: ss.key.pid, SecretKey: ss.key.secret[:]})
	c.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := c.be.Flush(); err != nil {
		return
	}
	watchDone := make(chan struct{})
	defer close(watchDone)
	go ss.watch(watchDone)
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		ss.relayUpstream()
		// The upstream is gone: end the client's side too.
		c.conn.Close()
	}()
	ss.run(ctx)
	hc.Conn.Close()
	ss.mu.Lock()
	ss.broken = true
	ss.changed.Broadcast()
	ss.mu.Unlock()
	<-relayDone
}

func newMarker() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "STEPGATE_REFUSED_" + hex.EncodeToString(b[:])
}

// run reads the client's messages until it leaves.
func (ss *session) run(ctx context.Context) {
	for {
		msg, err := ss.c.be.Receive()
		if err != nil {
			return
		}
		if !ss.handle(ctx, msg) {
			return
		}
	}
}

// handle judges and forwards one client message; false ends the session.
func (ss *session) handle(ctx context.Context, msg pgproto3.FrontendMessage) bool {
	switch m := msg.(type) {
	case *pgproto3.Query:
		ss.copyIn = 0
		ss.query(ctx, m)
		return ss.flush()
	case *pgproto3.Parse:
		ss.copyIn = 0
		// A text that does not parse is remembered as unknown; the
		// upstream answers the Parse with its own error.
		_, _ = ss.cls.Prepare(m.Name, m.Query)
		ss.sent(m.Name)
		ss.fe.Send(m)
	case *pgproto3.Bind:
		ss.copyIn = 0
		ss.bind(m)
		ss.fe.Send(m)
	case *pgproto3.Execute:
		ss.copyIn = 0
		ss.execute(ctx, m)
	case *pgproto3.Describe, *pgproto3.Close:
		if cl, ok := m.(*pgproto3.Close); ok && cl.ObjectType == 'P' {
			delete(ss.portals, cl.Name)
		}
		ss.fe.Send(m)
	case *pgproto3.Sync:
		if ss.inCopy() {
			return true // ignored by the server during COPY FROM STDIN; not a cycle
		}
		ss.endCycle()
		ss.fe.Send(m)
		return ss.flush()
	case *pgproto3.Flush:
		if !ss.inCopy() {
			ss.fe.Send(m)
			return ss.flush()
		}
	case *pgproto3.CopyData:
		ss.fe.Send(m)
	case *pgproto3.CopyDone, *pgproto3.CopyFail:
		ss.copyIn = 0
		ss.fe.Send(m)
		return ss.flush()
	case *pgproto3.FunctionCall:
		// The fast-path interface calls any function by its OID, past
		// the classifier: refused.
		ss.refuse(errorResponse(codeInsufficientPrivs, "refused by Stepgate: function calls through the fast-path interface are not relayed; call the function in a query", ""), true)
		return ss.flush()
	case *pgproto3.Terminate:
		ss.fe.Send(m)
		_ = ss.fe.Flush()
		return false
	default:
		ss.s.Log.Info("database client sent an unexpected message", "database", ss.s.db.Name, "user", ss.ident.Load().user.Username)
		return false
	}
	return true
}

func (ss *session) flush() bool { return ss.fe.Flush() == nil }

// endCycle counts a message that ends a cycle.
func (ss *session) endCycle() {
	ss.cycle++
	ss.executes = 0
	ss.settle()
}

// current is the cycle the messages now being sent belong to.
func (ss *session) current() int { return ss.cycle + 1 }

// sent notes a statement name prepared in the current cycle: until the
// cycle is seen to end without an error, the name's facts are not to be
// trusted by a later cycle. An error earlier in the cycle makes the
// server skip the Parse (or a PREPARE that fails leaves the old
// statement in place), so the statement under that name may still be
// an earlier one, such as a DELETE, while the classifier remembers the
// new text, such as a SELECT.
func (ss *session) sent(name string) {
	ss.unsettled[name] = ss.current()
	delete(ss.distrust, name)
}

// settle marks the names prepared in finished cycles that failed as not
// to be trusted, and forgets what no name waits on any more.
func (ss *session) settle() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.settleLocked()
}

func (ss *session) settleLocked() {
	for name, k := range ss.unsettled {
		if k <= ss.done {
			if ss.failed[k] {
				ss.distrust[name] = true
			}
			delete(ss.unsettled, name)
		}
	}
	for _, p := range ss.portals {
		for _, k := range []*int{&p.parseCycle, &p.bindCycle} {
			if *k > 0 && *k <= ss.done {
				if ss.failed[*k] {
					p.facts = sqlclass.Facts{Class: sqlclass.ClassUnknown}
				}
				*k = 0
			}
		}
	}
	oldest := ss.done
	for _, k := range ss.unsettled {
		oldest = min(oldest, k-1)
	}
	for _, p := range ss.portals {
		for _, k := range []int{p.parseCycle, p.bindCycle} {
			if k > 0 {
				oldest = min(oldest, k-1)
			}
		}
	}
	for k := range ss.failed {
		if k <= oldest {
			delete(ss.failed, k)
		}
	}
}

// await waits until the upstream has finished cycle k, then settles; it
// reports false when that did not happen within the statement wait.
func (ss *session) await(k int) bool {
	deadline := time.Now().Add(ss.s.db.StatementWait)
	timer := time.AfterFunc(ss.s.db.StatementWait, func() {
		ss.mu.Lock()
		ss.changed.Broadcast()
		ss.mu.Unlock()
	})
	defer timer.Stop()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for ss.done < k && !ss.broken && time.Now().Before(deadline) {
		ss.changed.Wait()
	}
	ss.settleLocked()
	return ss.done >= k
}

// trusted reports whether the statement prepared under name is known to
// be what the classifier remembers; it waits for an earlier cycle to
// finish when it has to.
func (ss *session) trusted(name string) bool {
	if k, ok := ss.unsettled[name]; ok && k < ss.current() {
		if !ss.flush() || !ss.await(k) {
			return false
		}
	}
	return !ss.distrust[name]
}

// bind records the portal a Bind makes, with the facts of its statement
// as they are now: a statement parsed again later does not change what
// an existing portal runs.
func (ss *session) bind(m *pgproto3.Bind) {
	if _, ok := ss.portals[m.DestinationPortal]; !ok && len(ss.portals) >= sqlclass.MaxPrepared {
		ss.planned(ss.cls.Prepared(m.PreparedStatement).Class)
		return // not remembered: executing it is judged unknown
	}
	p := &portal{facts: ss.cls.Prepared(m.PreparedStatement), parseCycle: ss.unsettled[m.PreparedStatement], bindCycle: ss.current()}
	if ss.distrust[m.PreparedStatement] {
		p.facts = sqlclass.Facts{Class: sqlclass.ClassUnknown}
	}
	ss.portals[m.DestinationPortal] = p
	if p.facts.Class != sqlclass.ClassUnknown && p.parseCycle > 0 && p.parseCycle < ss.current() &&
		(!ss.flush() || !ss.await(p.parseCycle)) {
		ss.planned(sqlclass.ClassUnknown) // what the name holds is not known yet
		return
	}
	ss.planned(p.facts.Class) // settled: unknown if the Parse was skipped
}

// planned notes that a Bind planned a statement of class c. Planning
// runs IMMUTABLE functions of constants (and stable ones, to estimate),
// so the Bind of an unknown statement, never executed, may already have
// run someone's set_config. Only the class is passed on: what the
// statement makes (a cursor) it makes when executed.
func (ss *session) planned(c sqlclass.Class) {
	ss.cls.Sent(sqlclass.Facts{Class: c}, nil)
}

// execute judges an Execute on the facts its portal was bound with, once
// the cycles its Parse and Bind were sent in are known to have run them.
func (ss *session) execute(ctx context.Context, m *pgproto3.Execute) {
	f := sqlclass.Facts{Class: sqlclass.ClassUnknown}
	if p, ok := ss.portals[m.Portal]; ok {
		f = p.facts
		for _, k := range []int{p.parseCycle, p.bindCycle} {
			if k > 0 && k < ss.current() && (!ss.flush() || !ss.await(k)) {
				f = sqlclass.Facts{Class: sqlclass.ClassUnknown}
			}
		}
		if f.Class != sqlclass.ClassUnknown {
			f = p.facts // settling turns it unknown when a cycle failed
		}
	}
	if copyFrom(f) {
		ss.refuse(errorResponse(codeInsufficientPrivs, "refused by Stepgate: COPY FROM STDIN goes through the simple query protocol only", ""), false)
		return
	}
	j, ok := ss.decide(ctx, f)
	if !ok {
		ss.refuse(j.refusal, false)
		return
	}
	ss.cls.Sent(f, nil)
	for _, st := range f.Statements {
		if st.Declares != "" {
			ss.sent(sqlclass.CursorKey(st.Declares)) // its Prepares is the protocol name, noted at its Parse
		}
	}
	ss.executes++
	if j.entry != nil {
		ss.follow(*j.entry, false)
	}
	ss.fe.Send(m)
}

// query judges a simple Query and forwards it, or its refusal.
func (ss *session) query(ctx context.Context, m *pgproto3.Query) {
	f, classifyErr := ss.cls.Classify(m.String)
	if !ss.trustsNames(f) {
		f = sqlclass.Facts{Class: sqlclass.ClassUnknown}
	}
	j, ok := ss.decide(ctx, f)
	ss.sentNames(f)
	if !ok {
		ss.refuse(j.refusal, true)
		return
	}
	ss.cls.Sent(f, classifyErr)
	if copyFrom(f) {
		ss.copyIn = ss.current()
	}
	if j.entry != nil {
		ss.follow(*j.entry, true)
	}
	ss.endCycle()
	ss.fe.Send(m)
}

// trustsNames reports whether the prepared statements f EXECUTEs and the
// cursors it FETCHes from are known to be what the classifier remembers
// (see trusted): a DECLARE skipped after an error leaves the cursor of
// that name an earlier one, such as a labelled read already approved.
func (ss *session) trustsNames(f sqlclass.Facts) bool {
	for _, st := range f.Statements {
		if st.Executes != "" && !ss.trusted(st.Executes) {
			return false
		}
		if st.Fetches != "" && !ss.trusted(sqlclass.CursorKey(st.Fetches)) {
			return false
		}
	}
	return true
}

// sentNames notes the statements and cursors f makes in the current
// cycle.
func (ss *session) sentNames(f sqlclass.Facts) {
	for _, st := range f.Statements {
		if st.Prepares != "" {
			ss.sent(st.Prepares)
		}
		if st.Declares != "" {
			ss.sent(sqlclass.CursorKey(st.Declares))
		}
	}
}

// inCopy reports whether a COPY FROM STDIN the client started may be
// taking data: its query's cycle has not finished (a COPY that failed at
// once has, and the client's next Sync is a cycle again).
func (ss *session) inCopy() bool {
	if ss.copyIn == 0 {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.done < ss.copyIn
}

// copyFrom reports whether f copies data from the client.
func copyFrom(f sqlclass.Facts) bool {
	for _, st := range f.Statements {
		if st.Command == "COPY" && st.Class >= sqlclass.ClassWrite {
			return true
		}
	}
	return false
}

// decide judges f and records the decision; ok says the statement may
// run. A statement that needs more proof is held for its user's approval
// when it can be (hold), and its challenge is written to the log before
// it waits.
func (ss *session) decide(ctx context.Context, f sqlclass.Facts) (judgement, bool) {
	start, arrived := time.Now(), ss.s.Now()
	p := proofs{extra: ss.extra}
	if ss.s.db.SingleUse {
		p = proofs{after: singleUseAfter(arrived)}
	}
	j := ss.s.judge(ss, f, p)
	if ss.s.holdable(j) {
		if !ss.recorded(ctx, &j, f, time.Since(start)) {
			return j, false
		}
		j = ss.hold(ctx, f, j, arrived)
	}
	ok := ss.recorded(ctx, &j, f, time.Since(start))
	return j, ok && j.refusal == nil
}

// recorded writes j to the sign-in log; when that fails, j becomes a
// refusal, since a statement never runs unrecorded.
func (ss *session) recorded(ctx context.Context, j *judgement, f sqlclass.Facts, took time.Duration) bool {
	e, err := ss.s.record(ctx, ss, *j, commandOf(f), took)
	j.entry = e
	if err != nil {
		ss.s.Log.Error("write database decision to the sign-in log", "database", ss.s.db.Name, "err", err)
		j.refusal = errorResponse("53000", "this statement could not be recorded in the sign-in log, so it was not run; try again in a moment", "")
		return false
	}
	return true
}

// refuse sends the upstream, in place of a refused statement, one that
// fails to parse, and queues the refusal the client gets for its error.
// asQuery sends it as a simple Query (its own cycle); otherwise as a
// Parse of a statement named after the marker, which changes no other
// statement.
func (ss *session) refuse(e *pgproto3.ErrorResponse, asQuery bool) {
	ss.mu.Lock()
	ss.refusals = append(ss.refusals, refusal{cycle: ss.current(), err: e})
	ss.mu.Unlock()
	if asQuery {
		ss.endCycle()
		ss.fe.Send(&pgproto3.Query{String: ss.marker})
		return
	}
	ss.fe.Send(&pgproto3.Parse{Name: ss.marker, Query: ss.marker})
}

// tokenProblem says why the session's token no longer lets it run
// statements: expired, or (checked again at most every second, by the
// watcher or here) revoked, its user disabled or a role it claims ended.
func (ss *session) tokenProblem() string {
	id, now := ss.ident.Load(), ss.s.Now()
	if expired(id, now) {
		return "your access token has expired: get a new one and connect again"
	}
	if now.Sub(id.verified) < reverifyEvery {
		return ""
	}
	return ss.reverify()
}

// reverify checks the session's token again and keeps what it finds; it
// returns why the token no longer holds, or "".
func (ss *session) reverify() string {
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	id, err := ss.s.recheckToken(ctx, ss.c.token, ss.ident.Load().user.Username)
	if err != nil {
		return "your access token is no longer valid (" + err.Error() + ")"
	}
	ss.ident.Store(id)
	return ""
}

// request is the access request for a statement of this session, judged
// on the token's proofs and those of p.
func (ss *session) request(contexts []string, now time.Time, p proofs) *policy.Request {
	id := ss.ident.Load()
	events := access.TokenEvents(id.claims.Proofs)
	if len(p.extra) > 0 {
		events = append(events, p.extra...)
	}
	u := id.user
	return &policy.Request{
		Subject:      policy.Subject{ID: u.ID, Username: u.Username, Groups: u.Groups, Roles: u.RolesAt(now, ss.s.db.Name)},
		App:          ss.s.db.Name,
		AuthContexts: contexts,
		IP:           ss.c.addr,
		ClientApp:    policy.ClientMobileDesktop,
		Events:       access.Events(events),
		SignInRisk:   access.SignInRisk(events),
		Now:          now,
	}
}

// relayUpstream forwards the upstream's messages to the client, swapping
// the marker's syntax errors for their refusals.
func (ss *session) relayUpstream() {
	be := ss.c.be
	for {
		msg, err := ss.fe.Receive()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				ss.s.Log.Debug("upstream database connection ended", "database", ss.s.db.Name, "err", err)
			}
			return
		}
		if _, ok := msg.(*pgproto3.BackendKeyData); ok {
			continue // the client keeps the gateway's key
		}
		if !ss.relay(be, msg) {
			return
		}
	}
}

// relay forwards one upstream message to the client; false means the
// client is gone. The write lock covers the buffered messages as well as
// the flush: a NOTICE or the watcher's FATAL goes between messages, never
// into one.
func (ss *session) relay(be *pgproto3.Backend, msg pgproto3.BackendMessage) bool {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.answered(msg)
	switch m := msg.(type) {
	case *pgproto3.ParameterStatus:
		if repinned(m) {
			ss.s.Log.Warn("database session ended: the server reads text differently from the classifier now", "database", ss.s.db.Name,
				"user", ss.ident.Load().user.Username, "setting", m.Name, "value", m.Value)
			be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: codeInsufficientPrivs,
				Message: "refused by Stepgate: a statement changed " + m.Name + ", which the gateway keeps at " + pinnedParams[m.Name] + "; the session was ended"})
			_ = be.Flush()
			ss.up.Close()
			return false
		}
		be.Send(m)
	case *pgproto3.ErrorResponse:
		be.Send(ss.failedCycle(m))
	case *pgproto3.ReadyForQuery:
		ss.finishCycle()
		be.Send(m)
	default:
		be.Send(m)
	}
	if ss.fe.ReadBufferLen() > 0 && !unprompted(msg) {
		// The upstream sent more in the same read: it goes to the
		// client in the same write. What waits is bounded by one read
		// of the upstream (8 KiB, or one larger message); when that
		// read ends inside a message, those before it wait for its
		// rest, which the server sends when its own output buffer next
		// fills or the command ends.
		return true
	}
	return be.Flush() == nil
}

// repinned reports whether the server says a pinned setting changed.
// The classifier flags every statement it sees change one (SET,
// set_config, an UPDATE of pg_settings) and the gateway refuses those;
// code it cannot see can still run set_config (a trigger, a rule, a
// view's function, created earlier), after which the server would read
// a string like 'a\', $$'; DROP TABLE t; -- $$' as a DROP where the
// classifier read one harmless SELECT. client_encoding and
// standard_conforming_strings are among the settings the server reports
// whenever they change, so the session ends before the client can send
// another statement once it has seen the change.
func repinned(m *pgproto3.ParameterStatus) bool {
	want, pinned := pinnedParams[m.Name]
	return pinned && !strings.EqualFold(m.Value, want)
}

// unprompted reports whether m is one the server sends on its own
// (a notice, a notification, a changed setting): it goes to the client
// at once, never held for what the same read holds after it.
func unprompted(m pgproto3.BackendMessage) bool {
	switch m.(type) {
	case *pgproto3.NoticeResponse, *pgproto3.NotificationResponse, *pgproto3.ParameterStatus:
		return true
	}
	return false
}

// failedCycle notes an error in the cycle being answered and returns what
// the client gets for it.
func (ss *session) failedCycle(m *pgproto3.ErrorResponse) *pgproto3.ErrorResponse {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.failed[ss.done+1] = true
	if m.Code != "42601" || !containsMarker(m, ss.marker) {
		return m
	}
	if len(ss.refusals) == 0 {
		return errorResponse(codeInsufficientPrivs, "refused by Stepgate", "")
	}
	r := ss.refusals[0]
	ss.refusals = ss.refusals[1:]
	return r.err
}

func containsMarker(m *pgproto3.ErrorResponse, marker string) bool {
	return strings.Contains(m.Message, marker)
}

// finishCycle counts a ReadyForQuery: the refusals queued for cycles now
// finished whose marker the server skipped (after an earlier error) are
// dropped, and waiting statements are woken.
func (ss *session) finishCycle() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.done++
	i := 0
	for i < len(ss.refusals) && ss.refusals[i].cycle <= ss.done {
		i++
	}
	ss.refusals = ss.refusals[i:]
	ss.changed.Broadcast()
}
