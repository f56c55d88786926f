package observe_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/elevate/observe"
	"github.com/stepgate/stepgate/internal/metrics"
)

// BenchmarkObserveStep is what one step costs the call that made it:
// the audit trail entry (a store write), the sign-in log entry (a
// queued write), the metrics, and queueing the mail and the webhook post;
// and apart, the audit trail and the rest.
func BenchmarkObserveStep(b *testing.B) {
	f := newFixture(b)
	log := slog.New(slog.DiscardHandler)
	signIns := audit.NewSignInLog(f.st, audit.SignInLogOptions{})
	b.Cleanup(func() { _ = signIns.Close(context.Background()) })
	rc := newReceiver(b, func(int) int { return http.StatusNoContent })
	m := metrics.New()
	w, err := observe.NewWebhook(fast(rc.srv.URL, m, f.roles))
	if err != nil {
		b.Fatal(err)
	}
	mr := observe.NewMailer(observe.MailOptions{Sender: &outbox{}, Users: f.st, Roles: f.roles, Metrics: m})
	b.Cleanup(func() { _ = w.Close(context.Background()); _ = mr.Close(context.Background()) })
	trail := observe.Audit(audit.New(f.st, nil), log)
	queued := []elevate.Observer{observe.SignIns(signIns.Write, log), observe.Metrics(m), mr.Observe, w.Observe}
	ev := provenEvent(f, "deploy the fix")
	ctx := context.Background()
	for _, bc := range []struct {
		name      string
		observers []elevate.Observer
	}{{"all", append([]elevate.Observer{trail}, queued...)}, {"audit-trail", []elevate.Observer{trail}}, {"queued-and-counted", queued}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				for _, o := range bc.observers {
					o(ctx, ev)
				}
			}
		})
	}
}
