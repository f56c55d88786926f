package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/audit/tally"
	"github.com/stepgate/stepgate/internal/deadend"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// MaxScan bounds how many sign-in log entries one impact replay reads,
// newest first, so a page answers in about a second even on a busy
// deployment; the result says when it stopped early.
const MaxScan = 100_000

// errStop ends a walk of the log early.
var errStop = errors.New("stop")

// walk reads entries newer than since, newest first, at most MaxScan,
// each decoded by decode (audit.Decode, or audit.DecodeOutcome when the
// request facts are not needed).
func (s *Service) walk(ctx context.Context, since time.Time, decode func(store.SignIn) (audit.SignIn, error), fn func(store.SignIn, audit.SignIn)) (scanned int, truncated bool, err error) {
	err = audit.WalkSignIns(ctx, s.Store, store.SignInQuery{Since: since}, MaxScan+1, func(row store.SignIn) error {
		if scanned == MaxScan {
			truncated = true
			return errStop
		}
		scanned++
		// A row this version cannot read is skipped, not fatal.
		if e, err := decode(row); err == nil {
			fn(row, e)
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return scanned, truncated, err
}

// Impact is what a change to the stored documents would have done to
// the recent decisions in the sign-in log.
type Impact struct {
	Since    time.Time `json:"since"`
	Replayed int       `json:"replayed"`
	// Unchanged decisions are not listed; Changed counts the others.
	Changed     int          `json:"changed"`
	Transitions []Transition `json:"transitions"`
	// Examples are some of the changed decisions, newest first.
	Examples []ImpactExample `json:"examples,omitempty"`
	// Skipped entries carry no request facts (sign-in attempts, entries
	// written before facts were kept): nothing to replay.
	Skipped   int  `json:"skipped"`
	Truncated bool `json:"truncated,omitempty"`
	// Stranded are the users the change would leave in a dead end who
	// are in none today: in scope of a policy they could never meet
	// with the methods they have (package deadend). Counted only when
	// the service finds dead ends.
	Stranded []string `json:"stranded,omitempty"`
	// DeadEndsChecked says Stranded was worked out.
	DeadEndsChecked bool `json:"dead_ends_checked"`
}

// Transition counts decisions that would change from one outcome to
// another, like allow → challenge.
type Transition struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Count int    `json:"count"`
}

// ImpactExample is one decision that would change.
type ImpactExample struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Username string    `json:"username,omitempty"`
	App      string    `json:"app,omitempty"`
	From     string    `json:"from"`
	To       string    `json:"to"`
}

const maxImpactExamples = 20

// Impact replays the decisions of the last days against the live set and
// against the set with c applied, and counts the decisions that differ.
// Both sides are evaluated now, from the same recorded facts, so the
// difference is the change alone and not whatever else changed since.
func (s *Service) Impact(ctx context.Context, c Candidate, days int) (Impact, error) {
	if days < 1 || days > 90 {
		return Impact{}, invalid("days must be between 1 and 90 (got %d)", days)
	}
	next, _, err := s.check(ctx, c)
	if err != nil {
		return Impact{}, err
	}
	return s.replay(ctx, next.Snapshot, days)
}

// replay replays the decisions of the last days in the environment
// against the live set and against next.
func (s *Service) replay(ctx context.Context, next *policy.Snapshot, days int) (Impact, error) {
	cur := s.Engine.Load()
	out := Impact{Since: s.Now().Add(-time.Duration(days) * 24 * time.Hour).UTC()}
	counts := map[[2]string]int{}
	var err error
	_, out.Truncated, err = s.walk(ctx, out.Since, audit.Decode, func(row store.SignIn, e audit.SignIn) {
		if !s.decidedHere(e.App) {
			return
		}
		if e.Facts == nil {
			out.Skipped++
			return
		}
		out.Replayed++
		req := e.Facts.PolicyRequest()
		before := cur.Evaluate(req, policy.EvaluateOptions{}).Outcome.String()
		after := next.Evaluate(req, policy.EvaluateOptions{}).Outcome.String()
		if before == after {
			return
		}
		out.Changed++
		counts[[2]string{before, after}]++
		if len(out.Examples) < maxImpactExamples {
			out.Examples = append(out.Examples, ImpactExample{Seq: row.Seq, Time: e.Time, Username: e.Username, App: e.App, From: before, To: after})
		}
	})
	for k, n := range counts {
		out.Transitions = append(out.Transitions, Transition{From: k[0], To: k[1], Count: n})
	}
	slices.SortFunc(out.Transitions, func(a, b Transition) int { return cmp.Compare(b.Count, a.Count) })
	if err != nil {
		return out, err
	}
	out.Stranded, err = s.newlyStranded(ctx, cur, next)
	out.DeadEndsChecked = err == nil && s.Deps.DeadEnds != nil
	return out, err
}

// decidedHere reports whether the decisions of app are made in the
// service's policy environment.
func (s *Service) decidedHere(app string) bool {
	env := ProductionEnvironment
	if s.AppEnvironment != nil {
		if e := s.AppEnvironment(app); e != "" {
			env = e
		}
	}
	return env == s.Environment()
}

// newlyStranded lists, by username, the users next leaves in a dead end
// who are in none under cur.
func (s *Service) newlyStranded(ctx context.Context, cur, next *policy.Snapshot) ([]string, error) {
	if s.Deps.DeadEnds == nil {
		return nil, nil
	}
	before, err := s.Deps.DeadEnds(ctx, cur)
	if err != nil {
		return nil, err
	}
	after, err := s.Deps.DeadEnds(ctx, next)
	if err != nil {
		return nil, err
	}
	had := before.StrandedUsers()
	var out []string
	seen := map[string]bool{}
	for _, p := range after.Policies {
		for _, f := range p.Stranded {
			if !had[f.UserID] && !seen[f.UserID] {
				seen[f.UserID] = true
				out = append(out, f.Username)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// ErrNoDeadEnds: the server was built without the dead-end analysis.
var ErrNoDeadEnds = errkind.New(errkind.NotFound, "dead-end analysis is not available")

// DeadEnds finds the users the live policies strand; ErrNoDeadEnds when
// the service was built without the analysis.
func (s *Service) DeadEnds(ctx context.Context) (deadend.Report, error) {
	if s.Deps.DeadEnds == nil {
		return deadend.Report{}, ErrNoDeadEnds
	}
	return s.Deps.DeadEnds(ctx, s.Engine.Load())
}

// Overview is what the policies did over a period: the charts of the
// console's first page. The period is whole hours (UTC) ending with the
// current one, read from the sign-in log's running totals.
type Overview struct {
	Since   time.Time     `json:"since"`
	Until   time.Time     `json:"until"`
	Bucket  time.Duration `json:"bucket_ns"`
	Buckets []Bucket      `json:"buckets"`
	Totals  Bucket        `json:"totals"`
	// StepUps are completed step-ups; Challenges the decisions that asked
	// for one. Their ratio is the completion rate (the rest were
	// abandoned or failed).
	StepUps        int           `json:"step_ups"`
	StepUpFailures int           `json:"step_up_failures"`
	Policies       []PolicyStats `json:"policies"`
}

// CompletionRate is completed step-ups per challenge, at most 1.
func (o Overview) CompletionRate() float64 {
	if o.Totals.Challenge == 0 {
		return 0
	}
	return min(1, float64(o.StepUps)/float64(o.Totals.Challenge))
}

// Bucket counts decisions in one interval.
type Bucket struct {
	Start     time.Time `json:"start"`
	Allow     int       `json:"allow"`
	Challenge int       `json:"challenge"`
	Block     int       `json:"block"`
	// Failure counts failed sign-in attempts.
	Failure int `json:"failure"`
}

// PolicyStats counts what one policy did: challenges and blocks when it
// is enforced, what it would have done while report-only.
type PolicyStats struct {
	Policy         string `json:"policy"`
	Challenged     int    `json:"challenged"`
	Blocked        int    `json:"blocked"`
	WouldChallenge int    `json:"would_challenge"`
	WouldBlock     int    `json:"would_block"`
}

// Triggered is how often the policy asked for more or refused, enforced
// or not.
func (p PolicyStats) Triggered() int {
	return p.Challenged + p.Blocked + p.WouldChallenge + p.WouldBlock
}

// overviewBuckets is how many bars the overview's chart has for a
// period of whole buckets; rounding out to whole hours adds one.
const overviewBuckets = 24

// Overview sums the sign-in log's running totals of the last period in
// buckets. The period is rounded out to whole hours, the totals' unit:
// it ends with the current hour, so the newest entries are always in,
// and starts at or before the period asked for, the start of the hour
// it falls in or a bucket earlier. Every bucket is a whole number of
// hours, so each count is exact, not estimated.
func (s *Service) Overview(ctx context.Context, period time.Duration) (Overview, error) {
	if period < time.Hour || period > 90*24*time.Hour {
		return Overview{}, invalid("the period must be between 1h and 90 days (got %s)", period)
	}
	now := s.Now().UTC()
	until := now.Truncate(time.Hour).Add(time.Hour)
	per := (int((period+time.Hour-1)/time.Hour) + overviewBuckets - 1) / overviewBuckets
	bucket := time.Duration(per) * time.Hour
	span := until.Sub(now.Add(-period).Truncate(time.Hour))
	n := int((span + bucket - 1) / bucket)
	o := Overview{Until: until, Since: until.Add(-time.Duration(n) * bucket), Bucket: bucket, Buckets: make([]Bucket, n)}
	for i := range o.Buckets {
		o.Buckets[i].Start = o.Since.Add(time.Duration(i) * bucket)
	}
	totals, err := s.Store.SignInTotals(ctx, store.SignInTotalsQuery{Since: o.Since, Until: o.Until, Bucket: bucket})
	if err != nil {
		return Overview{}, err
	}
	stats := map[string]*PolicyStats{}
	for _, t := range totals {
		i := int(t.Hour.Sub(o.Since) / bucket)
		if i < 0 || i >= n {
			continue
		}
		o.add(&o.Buckets[i], t)
		countPolicy(stats, t)
	}
	for _, p := range stats {
		o.Policies = append(o.Policies, *p)
	}
	slices.SortFunc(o.Policies, func(a, b PolicyStats) int {
		return cmp.Or(cmp.Compare(b.Triggered(), a.Triggered()), cmp.Compare(a.Policy, b.Policy))
	})
	return o, nil
}

// add counts one total of an outcome in b and in the period's totals.
func (o *Overview) add(b *Bucket, t store.SignInTotal) {
	n := int(t.N)
	switch t.Name {
	case tally.Allow:
		b.Allow += n
		o.Totals.Allow += n
	case tally.Challenge:
		b.Challenge += n
		o.Totals.Challenge += n
	case tally.Block:
		b.Block += n
		o.Totals.Block += n
	case tally.Failure:
		b.Failure += n
		o.Totals.Failure += n
	case tally.StepUpSuccess:
		o.StepUps += n
	case tally.StepUpFailure:
		o.StepUpFailures += n
	}
}

// countPolicy counts one total of what a policy did.
func countPolicy(stats map[string]*PolicyStats, t store.SignInTotal) {
	if t.Policy == "" {
		return
	}
	st := stats[t.Policy]
	if st == nil {
		st = &PolicyStats{Policy: t.Policy}
		stats[t.Policy] = st
	}
	n := int(t.N)
	switch t.Name {
	case tally.Challenged:
		st.Challenged += n
	case tally.Blocked:
		st.Blocked += n
	case tally.WouldChallenge:
		st.WouldChallenge += n
	case tally.WouldBlock:
		st.WouldBlock += n
	}
}

// SignInPage is one page of the sign-in log.
type SignInPage struct {
	Entries []Entry `json:"entries"`
	// Next is the cursor of the next (older) page; 0 at the end.
	Next int64 `json:"next_cursor,omitempty"`
}

// Entry is a sign-in log entry with its position.
type Entry struct {
	Seq int64 `json:"seq"`
	audit.SignIn
}

// SignIns returns a page of the sign-in log, newest first.
func (s *Service) SignIns(ctx context.Context, q store.SignInQuery) (SignInPage, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 50
	}
	rows, err := s.Store.ListSignIns(ctx, q)
	if err != nil {
		return SignInPage{}, err
	}
	var page SignInPage
	for _, row := range rows {
		e, err := audit.Decode(row)
		if err != nil {
			return SignInPage{}, err
		}
		page.Entries = append(page.Entries, Entry{Seq: row.Seq, SignIn: e})
	}
	if len(rows) == q.Limit {
		page.Next = rows[len(rows)-1].Seq
	}
	return page, nil
}

// SignIn returns the entry at seq.
func (s *Service) SignIn(ctx context.Context, seq int64) (Entry, error) {
	rows, err := s.Store.ListSignIns(ctx, store.SignInQuery{Before: seq + 1, Limit: 1})
	if err != nil {
		return Entry{}, err
	}
	if len(rows) == 0 || rows[0].Seq != seq {
		return Entry{}, &Error{Kind: NotFound, Message: fmt.Sprintf("no sign-in log entry %d", seq)}
	}
	e, err := audit.Decode(rows[0])
	if err != nil {
		return Entry{}, err
	}
	return Entry{Seq: seq, SignIn: e}, nil
}
