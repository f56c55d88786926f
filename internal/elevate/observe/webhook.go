package observe

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/metrics"
)

// SignatureHeader carries a webhook post's signature:
// t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>">.
const SignatureHeader = "X-Stepgate-Signature"

// Defaults of the webhook's delivery.
const (
	// DefaultWebhookQueue is how many posts wait at most; more are
	// dropped (logged and counted).
	DefaultWebhookQueue = 256
	// DefaultWebhookAttempts is how often one post is tried.
	DefaultWebhookAttempts = 5
	// DefaultWebhookTimeout bounds one attempt, connection to answer.
	DefaultWebhookTimeout = 10 * time.Second
	// MinWebhookSecret is the shortest secret accepted.
	MinWebhookSecret = 32
)

// DefaultBackoff waits 10 s before the second attempt and doubles the
// wait each time: five attempts span 2.5 minutes.
func DefaultBackoff(attempt int) time.Duration {
	return 10 * time.Second << min(attempt-1, 10)
}

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	// URL is https, or http to a loopback address.
	URL    string
	Secret string
	// Roles gives a role's settings, for the words of the text.
	Roles func(name string) elevate.Role
	// Queue, Attempts, Timeout and Backoff tune the delivery; zero
	// means the defaults. Backoff(n) is the wait after the n-th failed
	// attempt.
	Queue    int
	Attempts int
	Timeout  time.Duration
	Backoff  func(attempt int) time.Duration
	// Client posts; nil builds one with Timeout that follows no
	// redirects.
	Client  *http.Client
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// Webhook posts every told transition to a chat tool's incoming webhook
// (or any receiver): a JSON body with a Slack-style text line and the
// structured event, signed with HMAC-SHA256 over a timestamp and the
// body. Posts go through a bounded queue to one worker, in order; a
// failed post is tried again with exponential back-off, up to Attempts
// times, then given up and logged.
type Webhook struct {
	o WebhookOptions
	q *queue[post]
}

// post is one event to deliver: its body is fixed when queued, the
// signature made at each attempt (a receiver refuses old timestamps).
type post struct {
	id, kind, elevation string
	body                []byte
}

// NewWebhook checks o and starts the worker; Close stops it.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if err := checkWebhookURL(o.URL); err != nil {
		return nil, err
	}
	if len(o.Secret) < MinWebhookSecret {
		return nil, fmt.Errorf("elevation.webhook.secret has %d characters; use at least %d random ones: openssl rand -base64 32", len(o.Secret), MinWebhookSecret)
	}
	if o.Queue <= 0 {
		o.Queue = DefaultWebhookQueue
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultWebhookAttempts
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultWebhookTimeout
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.Client == nil {
		o.Client = webhookClient(o.Timeout)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Roles == nil {
		o.Roles = func(name string) elevate.Role { return elevate.Role{Name: name} }
	}
	w := &Webhook{o: o}
	w.q = newQueue(o.Queue, w.deliver)
	return w, nil
}

// webhookClient bounds every phase of a post, and follows no redirect:
// the receiver is configured, never discovered, and a redirect could
// send the signed event to another host or to plain http.
func webhookClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       time.Minute,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("elevation.webhook.url %q is not an absolute https URL; write it like https://chat.example.com/hooks/T0/B0", redact(raw))
	case u.User != nil:
		return errors.New("elevation.webhook.url must not carry a user name or password; the signature authenticates Stepgate")
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return errors.New("elevation.webhook.url uses plain http, which is allowed for loopback addresses only; use https")
	}
	return nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redact keeps the scheme and host of a receiver's URL: chat webhooks
// carry their secret in the path or the query.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the webhook"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Body is what a post carries.
type Body struct {
	// Text is the event in words, for chat tools (Slack, Mattermost,
	// Rocket.Chat and others take it as an incoming webhook's message).
	Text  string `json:"text"`
	Event Event  `json:"event"`
}

// Event is the structured part of a post.
type Event struct {
	// ID is the post's own id, the same on every attempt: a receiver
	// that answered too slowly and sees it again can tell.
	ID              string    `json:"id"`
	Kind            string    `json:"kind"`
	Elevation       string    `json:"elevation"`
	Role            string    `json:"role"`
	Requester       string    `json:"requester"`
	RequesterID     string    `json:"requester_id"`
	Actor           string    `json:"actor"`
	Comment         string    `json:"comment,omitempty"`
	Justification   string    `json:"justification,omitempty"`
	Ticket          string    `json:"ticket,omitempty"`
	Scope           []string  `json:"scope,omitempty"`
	DurationSeconds int64     `json:"duration_seconds"`
	State           string    `json:"state"`
	Until           time.Time `json:"until,omitzero"`
	Time            time.Time `json:"time"`
}

// NewBody is the body of e's post.
func NewBody(e elevate.Event, r elevate.Role) Body {
	el := e.Elevation
	text := "*" + chatEscape(headline(e, r)) + "*"
	for _, d := range details(e) {
		v := chatEscape(d.value)
		if d.typed {
			v = inert(v)
		}
		text += "\n" + d.label + ": " + v
	}
	return Body{Text: text, Event: Event{
		ID: strings.ToLower(rand.Text()), Kind: e.Kind, Elevation: el.ID, Role: el.Role,
		Requester: username(e), RequesterID: el.UserID, Actor: Actor(e), Comment: comment(e),
		Justification: el.Justification, Ticket: el.Ticket, Scope: el.Scope,
		DurationSeconds: int64(el.Duration / time.Second), State: el.State, Until: el.Until.UTC(), Time: e.At.UTC(),
	}}
}

// chatEscape keeps text from acting on the chat channel: Slack reads
// <!channel>, <@U123> and <https://x|label> as mentions and links, so &,
// < and > are escaped as Slack asks; and an @ gets a word joiner after
// it, so @here or @all (Mattermost, Rocket.Chat) is shown, not sent as a
// mention to the whole channel.
func chatEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "@", "@\u2060").Replace(plain(s))
}

// inert shows what a requester or approver typed as code: markdown
// links ([Approve here](https://…)), emphasis and mentions inside a code
// span are shown as typed, not rendered. A backtick in the text would
// close the span early, so it becomes a look-alike.
func inert(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "\u02cb") + "`"
}

// Observe queues e's post, when people are told of e. It never waits: a
// full queue drops the post, logged and counted.
//
// A receiver that is slow or down fills the queue while the worker
// retries; from then on posts are dropped rather than held in memory
// without bound or waited for by the request that caused them.
func (w *Webhook) Observe(ctx context.Context, e elevate.Event) {
	r := w.o.Roles(e.Elevation.Role)
	if !told(e, r) {
		return
	}
	b := NewBody(e, r)
	body, err := json.Marshal(b)
	if err != nil {
		w.o.Log.ErrorContext(ctx, "encode the elevation webhook", "err", err)
		return
	}
	if err := w.q.push(post{id: b.Event.ID, kind: e.Kind, elevation: e.Elevation.ID, body: body}); err != nil {
		w.o.Metrics.ElevationNotice("webhook", "dropped")
		w.o.Log.WarnContext(ctx, "elevation webhook: this event is not posted", "why", err.Error(),
			"queue", w.o.Queue, "kind", e.Kind, "elevation", e.Elevation.ID, "receiver", redact(w.o.URL))
	}
}

// Depth is how many posts wait.
func (w *Webhook) Depth() int { return w.q.depth() }

// Close posts what is queued until ctx ends, then gives up the rest.
func (w *Webhook) Close(ctx context.Context) error {
	if err := w.q.close(ctx); err != nil {
		return fmt.Errorf("elevation webhook: %w", err)
	}
	return nil
}

// deliver tries p up to Attempts times, waiting Backoff between tries.
func (w *Webhook) deliver(ctx context.Context, p post) {
	for attempt := 1; ; attempt++ {
		retry, err := w.attempt(ctx, p)
		if err == nil {
			w.o.Metrics.ElevationNotice("webhook", "delivered")
			return
		}
		if !retry || attempt >= w.o.Attempts || ctx.Err() != nil {
			w.o.Metrics.ElevationNotice("webhook", "failed")
			w.o.Log.Error("elevation webhook: giving up on this event", "attempts", attempt,
				"kind", p.kind, "elevation", p.elevation, "id", p.id, "err", err)
			return
		}
		w.o.Metrics.ElevationNotice("webhook", "retried")
		wait := w.o.Backoff(attempt)
		w.o.Log.Warn("elevation webhook: post failed; trying again", "attempt", attempt, "retry_in", wait,
			"kind", p.kind, "elevation", p.elevation, "err", err)
		if !sleep(ctx, wait) {
			w.o.Metrics.ElevationNotice("webhook", "failed")
			w.o.Log.Error("elevation webhook: shutting down; this event is not posted", "kind", p.kind, "elevation", p.elevation, "id", p.id)
			return
		}
	}
}

// attempt posts p once; retry says whether another attempt may succeed
// (no answer, a timeout, 408, 429, 5xx).
func (w *Webhook) attempt(ctx context.Context, p post) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(p.body))
	if err != nil {
		return false, fmt.Errorf("post to %s: %w", redact(w.o.URL), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Stepgate")
	req.Header.Set(SignatureHeader, Sign(w.o.Secret, w.o.Now(), p.body))
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("post to %s: %w", redact(w.o.URL), scrub(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch s := resp.StatusCode; {
	case s >= 200 && s <= 299:
		return false, nil
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return true, fmt.Errorf("%s answered %s", redact(w.o.URL), resp.Status)
	default:
		return false, fmt.Errorf("%s answered %s, which another attempt will not change; check the receiver's URL and its logs", redact(w.o.URL), resp.Status)
	}
}

// scrub drops the URL a *url.Error repeats: it may carry the receiver's
// secret path.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// sleep waits d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Sign is the X-Stepgate-Signature value of body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// ErrBadSignature means a post's signature does not verify, or its
// timestamp is too far from now.
var ErrBadSignature = errors.New("the webhook signature does not verify or is too old")

// Verify is the receiver's check of a post: header is its
// X-Stepgate-Signature. The signature must be HMAC-SHA256 under secret
// of the timestamp and the body as received, and the timestamp within
// tolerance of now, so a captured post cannot be replayed later.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrBadSignature
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrBadSignature
}
