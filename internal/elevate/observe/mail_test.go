package observe_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/elevate/observe"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/store"
)

// mail is one notice sent.
type mail struct{ to, subject, body string }

// outbox is a sender that keeps what it is given; block, when set, makes
// it wait until closed.
type outbox struct {
	mu    sync.Mutex
	mails []mail
	block chan struct{}
	// waiting is told the first time Notify waits on block.
	waiting     chan struct{}
	waitingOnce sync.Once
}

func (o *outbox) Notify(ctx context.Context, to, subject, body string) error {
	if o.block != nil {
		o.waitingOnce.Do(func() { close(o.waiting) })
		select {
		case <-o.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.mails = append(o.mails, mail{to, subject, body})
	return nil
}

func (o *outbox) sent() []mail {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]mail(nil), o.mails...)
}

func newMailer(t *testing.T, f *fixture, box *outbox, m *metrics.Metrics) *observe.Mailer {
	t.Helper()
	return observe.NewMailer(observe.MailOptions{Sender: box, Users: f.st, Roles: f.roles, Issuer: "https://sso.example.com/", Metrics: m})
}

func closeMailer(t *testing.T, mr *observe.Mailer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := mr.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMailGoesToThoseConcerned: the proven request goes to the approvers
// who may decide it (bob; not carol, who is disabled, and never the
// requester, even when she is in the approver group) and the role's
// notify address; the approval that activates the role is one mail to
// the requester, as is the end; every subject is one line.
func TestMailGoesToThoseConcerned(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// alice is an approver too: she must not be asked to approve herself.
	if _, err := f.st.UpdateUser(ctx, f.alice.ID, func(u store.User) (store.User, error) {
		u.Groups = []string{"admins"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	alice, err := f.st.GetUser(ctx, f.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.alice = alice
	box := &outbox{}
	mr := newMailer(t, f, box, nil)
	s := f.service(t, mr.Observe)
	e := f.ask(t, s, "deploy the fix")
	if _, err := s.Decide(ctx, e.ID, f.bob, true, "go ahead"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deactivate(ctx, e.ID, f.bob, true, "incident over\r\nBcc: everyone@example.com"); err != nil {
		t.Fatal(err)
	}
	closeMailer(t, mr)

	var got []string
	for _, m := range box.sent() {
		got = append(got, m.to+" | "+m.subject)
		if strings.ContainsAny(m.subject, "\r\n") {
			t.Errorf("attack/header-injection: subject %q spans lines", m.subject)
		}
	}
	want := []string{
		"bob@example.com | Stepgate: alice asks for bank-admin for 30m and waits for approval",
		"sec@example.com | Stepgate: alice asks for bank-admin for 30m and waits for approval",
		"alice@example.com | Stepgate: bank-admin is active for alice until 2031-03-04 09:30 UTC",
		"sec@example.com | Stepgate: bank-admin is active for alice until 2031-03-04 09:30 UTC",
		"alice@example.com | Stepgate: alice's bank-admin was ended by bob",
		"sec@example.com | Stepgate: alice's bank-admin was ended by bob",
	}
	slices.Sort(got[:2]) // the approvers are looked up after the notify addresses
	slices.Sort(want[:2])
	if !slices.Equal(got, want) {
		t.Fatalf("mails:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	ask := box.sent()[0].body
	for _, part := range []string{"Justification: deploy the fix", "stepgate role approve " + e.ID + " --as", "https://sso.example.com/approvals", "https://sso.example.com/admin/elevations"} {
		if !strings.Contains(ask, part) {
			t.Errorf("the approvers' mail lacks %q:\n%s", part, ask)
		}
	}
	if end := box.sent()[4].body; !strings.Contains(end, "Comment: incident over  Bcc: everyone@example.com") {
		t.Errorf("the end's reason is not shown on one line:\n%s", end)
	}
}

// TestUnprovenRequestsTellNobody is the attack of someone holding only
// a user's password (no second factor): they cannot prove a request,
// but they can make one, withdraw it and make it again, or leave it to
// lapse. None of that reaches the approvers' mailboxes or the chat
// channel; the audit trail and the sign-in log still have every step.
func TestUnprovenRequestsTellNobody(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	box := &outbox{}
	mr := newMailer(t, f, box, nil)
	rc := newReceiver(t, func(int) int { return http.StatusOK })
	w, err := observe.NewWebhook(fast(rc.srv.URL, nil, f.roles))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	count := func(_ context.Context, e elevate.Event) { kinds = append(kinds, e.Kind) }
	s := f.service(t, mr.Observe, w.Observe, count)
	for range 20 {
		e, err := s.Request(ctx, f.alice, elevate.Ask{Role: role})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Deactivate(ctx, e.ID, f.alice, false, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Request(ctx, f.alice, elevate.Ask{Role: role}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep ended %d, %v", n, err)
	}
	closeMailer(t, mr)
	closeWebhook(t, w)
	if n := len(box.sent()); n != 0 {
		t.Errorf("attack/unproven-request-flood: %d mails sent", n)
	}
	if n := len(rc.got()); n != 0 {
		t.Errorf("attack/unproven-request-flood: %d webhook posts", n)
	}
	if len(kinds) != 42 {
		t.Errorf("the observers saw %d steps, want 42 (recorded, just not told)", len(kinds))
	}
}

// TestSlowMailBlocksNothing: a mail server that never answers holds up
// no request; notices beyond the queue are dropped and counted.
func TestSlowMailBlocksNothing(t *testing.T) {
	f := newFixture(t)
	box := &outbox{block: make(chan struct{}), waiting: make(chan struct{})}
	m := metrics.New()
	mr := observe.NewMailer(observe.MailOptions{Sender: box, Users: f.st, Roles: f.roles, Issuer: "https://sso.example.com", Metrics: m, Queue: 1})
	ev := provenEvent(f, "deploy")
	start := time.Now()
	mr.Observe(context.Background(), ev)
	<-box.waiting // the worker hangs on the first
	for range 49 {
		mr.Observe(context.Background(), ev)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("50 notices took %s with the mail server hanging", took)
	}
	hasLines(t, exposition(t, m), `stepgate_elevation_notices_total{channel="mail",result="dropped"} 48`)
	close(box.block)
	closeMailer(t, mr)
}
