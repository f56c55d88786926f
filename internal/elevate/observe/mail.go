package observe

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/store"
)

// Sender mails a notice: the email sender of one-time codes.
type Sender interface {
	Notify(ctx context.Context, to, subject, body string) error
}

// UserLister lists users, for the members of an approver group.
type UserLister interface {
	ListUsers(ctx context.Context) ([]store.User, error)
}

// DefaultMailQueue is how many notices wait at most; more are dropped
// (logged and counted).
const DefaultMailQueue = 256

// mailTimeout bounds the mails of one notice.
const mailTimeout = time.Minute

// MailOptions configure a Mailer.
type MailOptions struct {
	Sender Sender
	Users  UserLister
	Roles  func(name string) elevate.Role
	// Issuer is the server's public URL, for the links in the mail.
	Issuer  string
	Queue   int
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// Mailer mails each told transition to the people it concerns, through
// a bounded queue to one worker:
//
//   - a proven request that waits for approval: the role's approvers
//     (the members of its approver group, never the requester);
//   - an approval, a denial, an activation and an end: the requester;
//   - all of them: the role's notify addresses.
//
// An approval that makes the role active is told once, as the
// activation.
type Mailer struct {
	o MailOptions
	q *queue[notice]
}

// notice is one mail to its recipients; the approvers are looked up by
// the worker, off the request's path.
type notice struct {
	subject, body string
	to            []string
	approvers     bool
	event         elevate.Event
	role          elevate.Role
}

// NewMailer starts the worker; Close stops it.
func NewMailer(o MailOptions) *Mailer {
	if o.Queue <= 0 {
		o.Queue = DefaultMailQueue
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	m := &Mailer{o: o}
	m.q = newQueue(o.Queue, m.send)
	return m
}

// Observe queues e's mail, when people are told of e. It never waits: a
// full queue drops the mail, logged and counted.
func (m *Mailer) Observe(ctx context.Context, e elevate.Event) {
	r := m.o.Roles(e.Elevation.Role)
	if !told(e, r) || (e.Kind == elevate.Approved && e.Elevation.State == store.ElevationActive) {
		return
	}
	n := notice{event: e, role: r, approvers: e.Kind == elevate.Proven}
	if !n.approvers && e.Requester.Email != "" && !e.Requester.Disabled {
		n.to = append(n.to, e.Requester.Email)
	}
	n.to = append(n.to, r.Notify...)
	n.subject, n.body = mailText(e, r, m.o.Issuer)
	if err := m.q.push(n); err != nil {
		m.o.Metrics.ElevationNotice("mail", "dropped")
		m.o.Log.WarnContext(ctx, "elevation mail: this notice is not mailed", "why", err.Error(),
			"queue", m.o.Queue, "kind", e.Kind, "elevation", e.Elevation.ID)
	}
}

// Close mails what is queued until ctx ends, then gives up the rest.
func (m *Mailer) Close(ctx context.Context) error {
	if err := m.q.close(ctx); err != nil {
		return fmt.Errorf("elevation mail: %w", err)
	}
	return nil
}

// send mails n to each recipient once.
func (m *Mailer) send(ctx context.Context, n notice) {
	ctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	to := n.to
	if n.approvers {
		users, err := m.o.Users.ListUsers(ctx)
		if err != nil {
			m.o.Log.Error("elevation mail: list the approvers", "elevation", n.event.Elevation.ID, "err", err)
		}
		for _, u := range approversOf(users, n.event, n.role) {
			if u.Email != "" {
				to = append(to, u.Email)
			}
		}
	}
	seen := map[string]bool{}
	for _, addr := range to {
		key := strings.ToLower(addr)
		if seen[key] {
			continue
		}
		seen[key] = true
		if err := m.o.Sender.Notify(ctx, addr, n.subject, n.body); err != nil {
			m.o.Metrics.ElevationNotice("mail", "failed")
			m.o.Log.Warn("elevation mail not sent", "to", addr, "kind", n.event.Kind, "elevation", n.event.Elevation.ID, "err", err)
			continue
		}
		m.o.Metrics.ElevationNotice("mail", "delivered")
	}
}

// mailText is the subject and plain-text body of e's mail.
func mailText(e elevate.Event, r elevate.Role, issuer string) (subject, body string) {
	head := headline(e, r)
	subject = "Stepgate: " + plain(head)
	var b strings.Builder
	b.WriteString(head + ".\r\n\r\n")
	for _, d := range details(e) {
		b.WriteString("  " + d.label + ": " + d.value + "\r\n")
	}
	b.WriteString("\r\n" + nextStep(e, r, strings.TrimSuffix(issuer, "/")) + "\r\n")
	return subject, b.String()
}

// nextStep says what the reader can do.
func nextStep(e elevate.Event, r elevate.Role, issuer string) string {
	id := e.Elevation.ID
	switch e.Kind {
	case elevate.Proven:
		return fmt.Sprintf("You are an approver of %s. Approve or deny it at %s/approvals\r\n"+
			"(administrators also at %s/admin/elevations), or have an operator answer\r\n"+
			"for you:\r\n"+
			"  stepgate role approve %s --as YOUR-NAME --comment \"...\"\r\n"+
			"  stepgate role deny %s --as YOUR-NAME --comment \"...\"\r\n"+
			"The request lapses at %s if nobody decides.", r.Name, issuer, issuer, id, id, clock(e.Elevation.Deadline))
	case elevate.Activated:
		return fmt.Sprintf("The role counts until %s and then ends by itself. To end it sooner, open %s/account/roles.",
			clock(e.Elevation.Until), issuer)
	case elevate.Denied, elevate.Expired:
		return fmt.Sprintf("To ask again, open %s/account/roles.", issuer)
	}
	return fmt.Sprintf("Your roles: %s/account/roles.", issuer)
}
