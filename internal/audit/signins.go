package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/audit/tally"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// Detection is one risk detection as the sign-in log keeps it: the
// detector's type, the level it gave as policies spell it (none, low,
// medium, high), its reason code and the evidence behind it. The log
// holds its own shape, written the way risk.Detection encodes, so the
// detectors can change without the log importing them and old entries
// read the same.
type Detection struct {
	Type     string            `json:"type"`
	Level    string            `json:"level"`
	Reason   string            `json:"reason"`
	Evidence map[string]string `json:"evidence,omitempty"`
}

// SignIn is one sign-in log entry: one access decision or sign-in
// attempt, with everything an administrator needs to explain it.
type SignIn struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	// Source is where the decision was made: "sign-in", "oidc",
	// "gateway", "step-up", "security-info" (a change of sign-in
	// methods), "elevation" (a step of a just-in-time elevation) or
	// "database" (a statement through the database gateway).
	Source   string   `json:"source"`
	UserID   string   `json:"user_id,omitempty"`
	Username string   `json:"username,omitempty"`
	App      string   `json:"app,omitempty"`
	Contexts []string `json:"contexts,omitempty"`
	IP       string   `json:"ip,omitempty"`
	Country  string   `json:"country,omitempty"`
	Device   string   `json:"device,omitempty"`
	// ClientApp is the user agent or client kind.
	ClientApp string `json:"client_app,omitempty"`
	// Platform is the device platform the user agent reports (windows,
	// ios, ...), as policies see it.
	Platform string `json:"platform,omitempty"`
	// Risk lists each risk detection with its evidence.
	Risk      []Detection `json:"risk,omitempty"`
	RiskLevel string      `json:"risk_level,omitempty"`
	// Decision is allow, challenge or block for an access decision, and
	// success, failure or throttled for a sign-in attempt.
	Decision string      `json:"decision"`
	Reason   reason.Code `json:"reason,omitempty"`
	// Policies has each policy's result with its reason code,
	// report-only outcomes included.
	Policies         []policy.PolicyResult `json:"policies,omitempty"`
	MethodsPrompted  []string              `json:"methods_prompted,omitempty"`
	MethodsCompleted []string              `json:"methods_completed,omitempty"`
	LatencyMicros    int64                 `json:"latency_us,omitempty"`
	// Facts are what a policy decision was made on, so it can be
	// replayed against edited policies (the console's impact diff).
	Facts *Facts `json:"facts,omitempty"`
	// Elevation is the request an entry of source elevation is about.
	Elevation *ElevationFacts `json:"elevation,omitempty"`
	// Statement is the SQL statement an entry of source database is
	// about.
	Statement *Statement `json:"statement,omitempty"`
}

// Statement is what the database gateway logs of a statement: its shape,
// never its text or a parameter value.
type Statement struct {
	Command string   `json:"command,omitempty"`
	Class   string   `json:"class"`
	Tables  []string `json:"tables,omitempty"`
	Labels  []string `json:"labels,omitempty"`
	// Fingerprint is the same for the same statement with other values.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Guardrail is the built-in rule that refused the statement.
	Guardrail string `json:"guardrail,omitempty"`
	// What happened once it ran (added to the entry afterwards): the
	// rows it returned or changed, how long the database took, and the
	// SQLSTATE of an error that stopped it ("skipped" when an earlier
	// error in its pipeline meant it never ran).
	Ran            bool   `json:"ran,omitempty"`
	Rows           int64  `json:"rows,omitempty"`
	DurationMicros int64  `json:"duration_us,omitempty"`
	SQLState       string `json:"sqlstate,omitempty"`
}

// ElevationFacts are what an entry of source elevation tells beyond the
// user: which request, for which role, who moved it on and why.
type ElevationFacts struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	// Actor is who caused the step: the requester, an approver, an
	// administrator, or "system" for an end at its time.
	Actor   string    `json:"actor,omitempty"`
	Comment string    `json:"comment,omitempty"`
	Until   time.Time `json:"until,omitzero"`
}

// Trigger is what one policy did to a decision.
type Trigger = tally.Trigger

// Triggers lists the policies that challenged or blocked the decision,
// or would have in report-only mode (tally.Outcome.Triggers).
func (e SignIn) Triggers() []Trigger { return e.Outcome().Triggers() }

// Outcome is what the sign-in log's running totals count of e.
func (e SignIn) Outcome() tally.Outcome {
	out := tally.Outcome{Source: e.Source, Decision: e.Decision, Policies: make([]tally.PolicyResult, len(e.Policies))}
	for i, r := range e.Policies {
		out.Policies[i] = tally.PolicyResult{Policy: r.Policy, Result: string(r.Result), Satisfied: r.Satisfied, Grant: r.Grant}
	}
	return out
}

// Facts are the access request of a decision, authentication events
// included (policy.Request leaves them out of its own JSON).
type Facts struct {
	policy.Request
	Events []strength.Event `json:"events,omitempty"`
}

// NewFacts keeps a copy of req.
func NewFacts(req *policy.Request) *Facts {
	return &Facts{Request: *req, Events: slices.Clone(req.Events)}
}

// PolicyRequest returns the request to evaluate again.
func (f *Facts) PolicyRequest() *policy.Request {
	r := f.Request
	r.Events = f.Events
	return &r
}

// ErrLogFull is returned by Write when the buffer is full and the log is
// configured to fail closed: the caller must refuse the request rather
// than let it through unlogged.
var ErrLogFull = errkind.New(errkind.Unavailable, "sign-in log buffer is full")

// errLogClosed is returned by Write once the log is shutting down: the
// request is refused, and another node (or this one, restarted) takes
// the retry.
var errLogClosed = errkind.New(errkind.Unavailable, "sign-in log is closed")

// Overflow says what Write does when the buffer is full.
type Overflow string

const (
	// OverflowBlock makes Write wait for room (backpressure).
	OverflowBlock Overflow = "block"
	// OverflowFailClosed makes Write return ErrLogFull at once.
	OverflowFailClosed Overflow = "fail-closed"
)

// SignInLogOptions tune the writer.
type SignInLogOptions struct {
	Buffer     int           // entries held before Write pushes back; default 8192
	Batch      int           // entries per store write; default 256
	FlushEvery time.Duration // longest an entry waits for its batch; default 200ms
	Overflow   Overflow      // default OverflowBlock
	// Full hears of every Write that found the buffer full (for metrics).
	Full func(Overflow)
	Log  *slog.Logger
	Now  func() time.Time
}

// SignInLog writes the sign-in log in batches from one goroutine, so a
// decision costs a channel send, not a database write. Entries are never
// dropped: a failing store is retried until it answers, and a full buffer
// blocks writers or fails them closed, as configured.
type SignInLog struct {
	store store.SignIns
	opts  SignInLogOptions
	queue chan store.SignIn

	mu      sync.RWMutex
	closed  bool
	flushed chan struct{} // closed when the writer has drained and exited
	flushRq chan chan struct{}
}

// NewSignInLog starts the writer. Close stops it after writing every
// queued entry.
func NewSignInLog(s store.SignIns, opts SignInLogOptions) *SignInLog {
	if opts.Buffer <= 0 {
		opts.Buffer = 8192
	}
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 200 * time.Millisecond
	}
	if opts.Overflow == "" {
		opts.Overflow = OverflowBlock
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &SignInLog{store: s, opts: opts, queue: make(chan store.SignIn, opts.Buffer),
		flushed: make(chan struct{}), flushRq: make(chan chan struct{})}
	go l.run()
	return l
}

// Depth is how many entries wait to be written.
func (l *SignInLog) Depth() int { return len(l.queue) }

// Write queues e. It fills in the ID and time when they are empty.
func (l *SignInLog) Write(ctx context.Context, e SignIn) error {
	if e.ID == "" {
		e.ID = rand.Text()
	}
	if e.Time.IsZero() {
		e.Time = l.opts.Now()
	}
	e.Time = e.Time.UTC()
	clamp(&e)
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode sign-in log entry: %w", err)
	}
	// The counters come from the entry as stored (clamped), so they are
	// what the store would read back from body, without reading it.
	counters := e.Outcome().Counters()
	if counters == nil {
		counters = []store.SignInCounter{}
	}
	row := store.SignIn{ID: e.ID, Time: e.Time, UserID: e.UserID, App: e.App, Decision: e.Decision, Body: body, Counters: counters}
	if e.Statement != nil {
		row.StatementClass = e.Statement.Class
	}
	for _, p := range e.Policies {
		if p.Result != policy.ResultNotApplied && p.Result != policy.ResultReportOnlyNotApplied {
			row.Policies = append(row.Policies, p.Policy)
		}
	}
	return l.enqueueCtx(ctx, row)
}

// enqueueCtx queues row, waiting for room (bounded by ctx) unless the log
// fails closed.
func (l *SignInLog) enqueueCtx(ctx context.Context, row store.SignIn) error {
	// Writers share the read lock; only Close takes it exclusively, so
	// no write can race the queue's closing.
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return errLogClosed
	}
	select {
	case l.queue <- row:
		return nil
	default:
	}
	if l.opts.Full != nil {
		l.opts.Full(l.opts.Overflow)
	}
	if l.opts.Overflow == OverflowFailClosed {
		return ErrLogFull
	}
	select {
	case l.queue <- row:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sign-in log buffer is full: %w", ctx.Err())
	}
}

// enqueue queues an amendment without waiting: the statement has run,
// so there is nothing to refuse, and a full log drops the amendment
// rather than hold the session.
func (l *SignInLog) enqueue(row store.SignIn) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return errLogClosed
	}
	select {
	case l.queue <- row:
		return nil
	default:
		return ErrLogFull
	}
}

// Flush waits until every entry queued before it is in the store.
func (l *SignInLog) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case l.flushRq <- done:
	case <-l.flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes every queued entry and stops the writer. Writes after
// Close fail.
func (l *SignInLog) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	select {
	case <-l.flushed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sign-in log: %d entries not yet written: %w", l.Depth(), ctx.Err())
	}
}

func (l *SignInLog) run() {
	defer close(l.flushed)
	tick := time.NewTicker(l.opts.FlushEvery)
	defer tick.Stop()
	batch := make([]store.SignIn, 0, l.opts.Batch)
	for {
		select {
		case row, ok := <-l.queue:
			if !ok {
				l.write(batch)
				return
			}
			batch = append(batch, row)
			if len(batch) >= l.opts.Batch {
				l.write(batch)
				batch = batch[:0]
			}
		case <-tick.C:
			l.write(batch)
			batch = batch[:0]
		case done := <-l.flushRq:
			batch = l.drain(batch)
			l.write(batch)
			batch = batch[:0]
			close(done)
		}
	}
}

// drain moves what is queued now into batch, writing full batches.
func (l *SignInLog) drain(batch []store.SignIn) []store.SignIn {
	for {
		select {
		case row, ok := <-l.queue:
			if !ok {
				return batch
			}
			batch = append(batch, row)
			if len(batch) >= l.opts.Batch {
				l.write(batch)
				batch = batch[:0]
			}
		default:
			return batch
		}
	}
}

// write stores batch, retrying until the store takes it: the batch is
// idempotent, and dropping it would lose entries. While it retries the
// buffer fills and Write pushes back.
func (l *SignInLog) write(batch []store.SignIn) {
	if len(batch) == 0 {
		return
	}
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := l.store.AppendSignIns(ctx, batch)
		cancel()
		if err == nil {
			return
		}
		l.opts.Log.Error("write sign-in log; retrying", "entries", len(batch), "retry_in", wait, "err", err)
		time.Sleep(wait)
		wait = min(wait*2, 5*time.Second)
	}
}

// Amend replaces the stored body of the entry e.ID, written before with
// Write, with e: what happened after the decision (a database
// statement's rows and duration). It goes through the same queue, after
// the entry, and changes neither the indexed fields nor the totals.
func (l *SignInLog) Amend(ctx context.Context, e SignIn) error {
	if e.ID == "" {
		return errors.New("sign-in log: an amendment names the entry it amends")
	}
	e.Time = e.Time.UTC()
	clamp(&e)
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode sign-in log entry: %w", err)
	}
	return l.enqueue(store.SignIn{ID: e.ID, Time: e.Time, UserID: e.UserID, App: e.App, Decision: e.Decision, Body: body, Amend: true})
}

// Decode reads a stored row back into its entry.
func Decode(row store.SignIn) (SignIn, error) {
	var e SignIn
	if err := json.Unmarshal(row.Body, &e); err != nil {
		return SignIn{}, fmt.Errorf("sign-in log entry %s: %w", row.ID, err)
	}
	return e, nil
}

// DecodeOutcome reads an entry like Decode, but leaves out its request
// facts, which cost most of the decoding: for counting what entries
// decided and which policies asked for more, over many entries.
func DecodeOutcome(row store.SignIn) (SignIn, error) {
	var e struct {
		SignIn
		Facts skipJSON `json:"facts"` // shadows SignIn.Facts, which stays nil
	}
	if err := json.Unmarshal(row.Body, &e); err != nil {
		return SignIn{}, fmt.Errorf("sign-in log entry %s: %w", row.ID, err)
	}
	return e.SignIn, nil
}

// skipJSON accepts any JSON value and keeps nothing of it.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

// WalkSignIns calls fn for each row q selects, newest first, fetching a
// page at a time with the cursor; limit > 0 stops after that many rows.
func WalkSignIns(ctx context.Context, s store.SignIns, q store.SignInQuery, limit int, fn func(store.SignIn) error) error {
	const page = 1000
	for seen := 0; limit <= 0 || seen < limit; {
		q.Limit = page
		if limit > 0 {
			q.Limit = min(page, limit-seen)
		}
		rows, err := s.ListSignIns(ctx, q)
		if err != nil || len(rows) == 0 {
			return err
		}
		for _, row := range rows {
			if err := fn(row); err != nil {
				return err
			}
		}
		seen += len(rows)
		q.Before = rows[len(rows)-1].Seq
	}
	return nil
}
