package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/elevate/observe"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/store"
)

const secret = "0123456789abcdef0123456789abcdef-test"

// received is one post a receiver saw.
type received struct {
	signature string
	body      []byte
}

// receiver is a webhook receiver on 127.0.0.1 that answers with
// status(n) for its n-th post (from 1) and keeps every post.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	posts []received
}

func newReceiver(t testing.TB, status func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.posts = append(rc.posts, received{signature: r.Header.Get(observe.SignatureHeader), body: body})
		n := len(rc.posts)
		rc.mu.Unlock()
		w.WriteHeader(status(n))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.posts...)
}

// fast is delivery tuned for tests: no real back-off.
func fast(url string, m *metrics.Metrics, roles func(string) elevate.Role) observe.WebhookOptions {
	return observe.WebhookOptions{URL: url, Secret: secret, Roles: roles, Metrics: m,
		Backoff: func(int) time.Duration { return time.Millisecond }, Timeout: 2 * time.Second}
}

// provenEvent is a proven request waiting for approval: the first step
// people are told of.
func provenEvent(f *fixture, justification string) elevate.Event {
	now := f.clock.Now()
	return elevate.Event{Kind: elevate.Proven, Requester: f.alice, Actor: f.alice.ID, ActorName: "alice", At: now,
		Elevation: store.Elevation{ID: "elv_test", UserID: f.alice.ID, Role: role, Duration: time.Hour, Justification: justification,
			State: store.ElevationPending, RequestedAt: now, ProvenAt: now, Deadline: now.Add(time.Hour)}}
}

func closeWebhook(t *testing.T, w *observe.Webhook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookSignatureVerifies: a receiver checking X-Stepgate-Signature
// accepts the post as sent, and refuses it altered, under another
// secret, or replayed after the tolerance.
func TestWebhookSignatureVerifies(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(int) int { return http.StatusOK })
	w, err := observe.NewWebhook(fast(rc.srv.URL, nil, f.roles))
	if err != nil {
		t.Fatal(err)
	}
	w.Observe(context.Background(), provenEvent(f, "deploy the fix"))
	closeWebhook(t, w)
	posts := rc.got()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	p := posts[0]
	var body observe.Body
	if err := json.Unmarshal(p.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Event.Kind != elevate.Proven || body.Event.Elevation != "elv_test" || body.Event.Role != role || body.Event.Requester != "alice" ||
		body.Event.Justification != "deploy the fix" || body.Event.DurationSeconds != 3600 || body.Event.ID == "" || body.Event.Time.IsZero() {
		t.Errorf("event %+v", body.Event)
	}
	if !strings.Contains(body.Text, "alice asks for bank-admin for 1h") {
		t.Errorf("text %q", body.Text)
	}
	now := time.Now()
	for _, tc := range []struct {
		name              string
		secret, signature string
		body              []byte
		at                time.Time
		ok                bool
	}{
		{"ok/as-sent", secret, p.signature, p.body, now, true},
		{"fail/body-altered", secret, p.signature, []byte(strings.Replace(string(p.body), "bank-admin", "root", 1)), now, false},
		{"fail/other-secret", strings.Repeat("x", 40), p.signature, p.body, now, false},
		{"fail/replayed-later", secret, p.signature, p.body, now.Add(10 * time.Minute), false},
		{"fail/no-signature", secret, "", p.body, now, false},
		{"fail/timestamp-moved", secret, strings.Replace(p.signature, "t=", "t=1", 1), p.body, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := observe.Verify(tc.secret, tc.signature, tc.body, tc.at, 5*time.Minute)
			if (err == nil) != tc.ok {
				t.Errorf("Verify = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestWebhookRetriesUntilDelivered: a receiver that fails twice and then
// takes the post gets the event once, three attempts of the same body
// with the same event id, each freshly signed.
func TestWebhookRetriesUntilDelivered(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	m := metrics.New()
	w, err := observe.NewWebhook(fast(rc.srv.URL, m, f.roles))
	if err != nil {
		t.Fatal(err)
	}
	w.Observe(context.Background(), provenEvent(f, "deploy"))
	closeWebhook(t, w)
	posts := rc.got()
	if len(posts) != 3 {
		t.Fatalf("%d attempts, want 3", len(posts))
	}
	for _, p := range posts {
		if string(p.body) != string(posts[0].body) {
			t.Error("a retry changed the body")
		}
		if err := observe.Verify(secret, p.signature, p.body, time.Now(), time.Minute); err != nil {
			t.Errorf("attempt not signed: %v", err)
		}
	}
	hasLines(t, exposition(t, m),
		`stepgate_elevation_notices_total{channel="webhook",result="delivered"} 1`,
		`stepgate_elevation_notices_total{channel="webhook",result="retried"} 2`)
}

// TestWebhookGivesUp: a receiver that keeps failing is tried Attempts
// times and then given up; one that refuses the post for good (a 4xx
// other than 408 and 429) is not tried again.
func TestWebhookGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		attempts int
	}{
		{"fail/server-error-every-time", http.StatusInternalServerError, 4},
		{"fail/throttled-every-time", http.StatusTooManyRequests, 4},
		{"fail/not-found-is-final", http.StatusNotFound, 1},
		{"fail/redirect-not-followed", http.StatusFound, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			rc := newReceiver(t, func(int) int { return tc.status })
			m := metrics.New()
			o := fast(rc.srv.URL, m, f.roles)
			o.Attempts = 4
			w, err := observe.NewWebhook(o)
			if err != nil {
				t.Fatal(err)
			}
			w.Observe(context.Background(), provenEvent(f, "deploy"))
			closeWebhook(t, w)
			if n := len(rc.got()); n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
			hasLines(t, exposition(t, m), `stepgate_elevation_notices_total{channel="webhook",result="failed"} 1`)
		})
	}
}

// TestHangingReceiverBlocksNothing is the attack of a receiver that
// accepts the connection and never answers (or a chat service that is
// down): requests, proofs and approvals go on at full speed, the posts
// wait in the bounded queue, and once it is full further posts are
// dropped, logged and counted, never waited for.
func TestHangingReceiverBlocksNothing(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var arrived atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		arrived.Add(1)
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: the server's Close waits for its handlers
	m := metrics.New()
	var logged syncBuffer
	o := fast(srv.URL+"/hooks/secret-path", m, f.roles)
	o.Queue, o.Timeout = 2, time.Minute
	o.Log = slog.New(slog.NewTextHandler(&logged, nil))
	w, err := observe.NewWebhook(o)
	if err != nil {
		t.Fatal(err)
	}
	s := f.service(t, w.Observe)
	ctx := context.Background()
	start := time.Now()
	// Each round tells two steps (the proof, then the approval's
	// activation): the first post hangs, two wait, the rest are dropped.
	const rounds = 5
	for range rounds {
		e := f.ask(t, s, "deploy")
		if _, err := s.Decide(ctx, e.ID, f.bob, true, "ok"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Deactivate(ctx, e.ID, f.alice, false, ""); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("attack/hanging-receiver: %d rounds took %s with the receiver hanging", rounds, took)
	}
	if w.Depth() > 2 {
		t.Fatalf("queue holds %d posts, bound 2", w.Depth())
	}
	out := exposition(t, m)
	if !strings.Contains(out, `stepgate_elevation_notices_total{channel="webhook",result="dropped"}`) {
		t.Fatalf("no dropped posts counted:\n%s", out)
	}
	if !strings.Contains(logged.String(), `why="the queue is full"`) || strings.Contains(logged.String(), "/hooks/secret-path") {
		t.Errorf("the drop is not logged, or the log shows the receiver's path:\n%s", logged.String())
	}
	// Shutting down gives up on the hanging post within its deadline.
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := w.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deadline", err)
	}
	if arrived.Load() != 1 {
		t.Errorf("%d posts reached the receiver, want the one it hangs on", arrived.Load())
	}
	// After shutdown a step is dropped, not posted, and nothing panics.
	w.Observe(ctx, provenEvent(f, "late"))
	if !strings.Contains(logged.String(), `why="the server is shutting down"`) {
		t.Errorf("a step after shutdown is not logged as dropped:\n%s", logged.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestChatTextCannotPing is the attack of a requester who writes chat
// markup into the justification to ping the whole channel or dress a
// phishing link as Stepgate's: the text shows the markup, inert; the
// structured event keeps what was typed.
func TestChatTextCannotPing(t *testing.T) {
	f := newFixture(t)
	typed := "<!channel> please approve <https://evil.example/login|Stepgate console> @here @all ` [Approve here](https://evil.example/a) `"
	b := observe.NewBody(provenEvent(f, typed), f.roles(role))
	for _, bad := range []string{"<!channel>", "<https://", "|Stepgate console>", "@here", "@all"} {
		if strings.Contains(b.Text, bad) {
			t.Errorf("attack/chat-markup: text carries %q: %s", bad, b.Text)
		}
	}
	// The markdown link stays inside one code span: the backticks typed
	// cannot close it early.
	var line string
	for l := range strings.SplitSeq(b.Text, "\n") {
		if strings.HasPrefix(l, "Justification: ") {
			line = l
		}
	}
	if !strings.HasPrefix(line, "Justification: `") || !strings.HasSuffix(line, "`") || strings.Count(line, "`") != 2 {
		t.Errorf("attack/chat-markdown-link: the justification is not one inert code span: %q", line)
	}
	if !strings.Contains(b.Text, "&lt;!channel&gt;") {
		t.Errorf("the justification is not shown escaped: %s", b.Text)
	}
	if b.Event.Justification != typed {
		t.Errorf("event justification %q, want it as typed", b.Event.Justification)
	}
}

// TestWebhookRefusesUnsafeSettings: the receiver must be https (http on
// loopback only), carry no credentials, and the secret be long enough.
func TestWebhookRefusesUnsafeSettings(t *testing.T) {
	for _, tc := range []struct {
		name, url, secret, want string
	}{
		{"fail/plain-http", "http://chat.example.com/hook", secret, "plain http"},
		{"fail/credentials-in-url", "https://user:pw@chat.example.com/hook", secret, "user name or password"},
		{"fail/not-a-url", "chat.example.com/hook", secret, "absolute https"},
		{"fail/short-secret", "https://chat.example.com/hook", "short", "at least 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := observe.NewWebhook(observe.WebhookOptions{URL: tc.url, Secret: tc.secret})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewWebhook = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	w, err := observe.NewWebhook(observe.WebhookOptions{URL: "http://127.0.0.1:1/hook", Secret: secret})
	if err != nil {
		t.Fatalf("loopback http refused: %v", err)
	}
	closeWebhook(t, w)
}
