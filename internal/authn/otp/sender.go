package otp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
)

// Sender delivers a code. purpose is authn.PurposeEnroll (confirming a
// new address or number) or authn.PurposeVerify (a sign-in). A code
// always expires CodeTTL after it is sent.
type Sender interface {
	Send(ctx context.Context, to, code, purpose string) error
}

var (
	_ Sender = (*SMTPSender)(nil)
	_ Sender = (*WebhookSender)(nil)
	_ Sender = (*LogSender)(nil)
)

// isLoopback reports whether host names this machine: localhost or a
// loopback address. Names other than localhost are not resolved: what a
// name resolves to can change after the check.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// purposeText says what the code is for, in the message.
func purposeText(purpose string) string {
	if purpose == authn.PurposeEnroll {
		return "to confirm this address for Stepgate sign-in codes"
	}
	return "to confirm a Stepgate sign-in"
}

// SMTPOptions configure an SMTPSender.
type SMTPOptions struct {
	Host string
	Port int
	// Username and Password, when set, authenticate with AUTH PLAIN,
	// which is only ever sent inside TLS.
	Username string
	Password string
	// From is the sender address, like "Stepgate <sso@example.com>".
	From string
	// InsecureLoopback allows a server on this machine that does not
	// offer STARTTLS (a local relay). Refused for any other host.
	InsecureLoopback bool
	// RootCAs are the CAs trusted for the server's certificate; nil
	// means the system's.
	RootCAs *x509.CertPool
	// Timeout bounds one delivery; zero means 15 s.
	Timeout time.Duration
	Now     func() time.Time
}

// SMTPSender mails codes. STARTTLS is mandatory: a code crossing the
// network in clear text could be read off the wire and used before the
// user types it. The only exception is a relay on this machine that the
// configuration explicitly calls insecure.
type SMTPSender struct {
	o    SMTPOptions
	from string // the bare address, for the envelope
}

// NewSMTPSender checks the options and returns the sender.
func NewSMTPSender(o SMTPOptions) (*SMTPSender, error) {
	switch {
	case o.Host == "":
		return nil, errors.New("smtp: the host is empty; set otp.smtp.host")
	case o.Port < 1 || o.Port > 65535:
		return nil, fmt.Errorf("smtp: port %d is out of range; 587 is the submission port", o.Port)
	case o.InsecureLoopback && !isLoopback(o.Host):
		return nil, fmt.Errorf("smtp: insecure_loopback is only allowed for localhost, 127.0.0.1 or ::1, not %q; remove it and let the server offer STARTTLS", o.Host)
	case o.Password != "" && o.Username == "":
		return nil, errors.New("smtp: a password without a username; set otp.smtp.username too")
	}
	from, err := parseFrom(o.From)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &SMTPSender{o: o, from: from}, nil
}

// Send mails the code to the address to.
func (s *SMTPSender) Send(ctx context.Context, to, code, purpose string) error {
	return s.deliver(ctx, to, func() []byte { return s.message(to, code, purpose) })
}

// Notify mails a notice (a change of the user's sign-in methods) to the
// address to. subject must be one line; body is plain text.
func (s *SMTPSender) Notify(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(subject, "\r\n") {
		return errors.New("smtp: a notice subject must be one line")
	}
	return s.deliver(ctx, to, func() []byte { return s.notice(to, subject, body) })
}

// deliver sends the message msg makes to the address to.
func (s *SMTPSender) deliver(ctx context.Context, to string, msg func() []byte) error {
	// Anything but a bare address could smuggle headers or SMTP commands.
	if _, err := validEmail(to); err != nil {
		return fmt.Errorf("smtp: %q is not a bare email address", to)
	}
	addr := net.JoinHostPort(s.o.Host, strconv.Itoa(s.o.Port))
	d := net.Dialer{Timeout: s.o.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp: connect to %s: %w", addr, err)
	}
	defer conn.Close()
	// Network deadlines run on the wall clock, not the injected one.
	deadline := time.Now().Add(s.o.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)

	c, err := smtp.NewClient(conn, s.o.Host)
	if err != nil {
		return fmt.Errorf("smtp: greeting from %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("smtp: EHLO: %w", err)
	}
	secure := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{ServerName: s.o.Host, RootCAs: s.o.RootCAs, MinVersion: tls.VersionTLS12}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp: STARTTLS with %s: %w", addr, err)
		}
		secure = true
	} else if !s.o.InsecureLoopback {
		return fmt.Errorf("smtp: %s does not offer STARTTLS, and codes are never mailed in clear text; enable TLS on the server", addr)
	}
	if s.o.Username != "" {
		if !secure {
			return fmt.Errorf("smtp: %s offers no TLS, and the password is never sent in clear text; enable STARTTLS or remove otp.smtp.username", addr)
		}
		if err := c.Auth(smtp.PlainAuth("", s.o.Username, s.o.Password, s.o.Host)); err != nil {
			return fmt.Errorf("smtp: authenticate as %s: %w", s.o.Username, err)
		}
	}
	if err := c.Mail(s.from); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(msg()); err != nil {
		return fmt.Errorf("smtp: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: message refused: %w", err)
	}
	return c.Quit()
}

// notice is a notice mail: the same headers as a code's, another subject
// and body.
func (s *SMTPSender) notice(to, subject, body string) []byte {
	var b bytes.Buffer
	s.headers(&b, to, subject)
	b.WriteString(body)
	return b.Bytes()
}

// headers writes a mail's header block, blank line included.
func (s *SMTPSender) headers(b *bytes.Buffer, to, subject string) {
	now := s.o.Now().UTC()
	id := strings.ToLower(rand.Text())
	domain := s.from[strings.LastIndexByte(s.from, '@')+1:]
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	from, _ := mail.ParseAddress(s.o.From) // checked by NewSMTPSender
	header("From", from.String())
	header("To", to)
	header("Subject", subject)
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+id+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
}

// message is the mail: plain text, ASCII, short lines.
func (s *SMTPSender) message(to, code, purpose string) []byte {
	now := s.o.Now().UTC()
	var b bytes.Buffer
	s.headers(&b, to, "Your Stepgate code")
	body := fmt.Sprintf("Your Stepgate code is %s\r\n\r\n"+
		"Enter it %s.\r\n"+
		"It expires in %d minutes, at %s.\r\n\r\n"+
		"Stepgate never asks for this code by phone, chat or email. If anyone\r\n"+
		"asks you for it, do not give it: they are trying to get into your\r\n"+
		"account. If you did not just ask for a code, someone may know your\r\n"+
		"password: change it and tell your administrator.\r\n",
		code, purposeText(purpose), int(CodeTTL/time.Minute), now.Add(CodeTTL).Format("15:04 MST"))
	b.WriteString(body)
	return b.Bytes()
}

// parseFrom accepts "sso@example.com" or "Stepgate <sso@example.com>" and
// returns the bare address. Line breaks are refused: they would let the
// setting add headers to every mail.
func parseFrom(from string) (string, error) {
	if strings.ContainsAny(from, "\r\n") {
		return "", errors.New("smtp: otp.smtp.from must be one line")
	}
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", fmt.Errorf("smtp: otp.smtp.from %q is not an address; write it like Stepgate <sso@example.com>", from)
	}
	return a.Address, nil
}

// WebhookOptions configure a WebhookSender.
type WebhookOptions struct {
	// URL receives the POST. It must be https, except on this machine.
	URL string
	// Secret keys the signature; at least 32 characters.
	Secret string
	// Timeout bounds one delivery; zero means 10 s.
	Timeout time.Duration
	// RootCAs are the CAs trusted for the receiver; nil means the
	// system's.
	RootCAs *x509.CertPool
	Now     func() time.Time
}

// WebhookSender hands codes to an SMS gateway of the operator's choice
// with a signed HTTPS POST:
//
//	POST <url>
//	Content-Type: application/json
//	X-Stepgate-Timestamp: 1767225600
//	X-Stepgate-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
//	{"to":"+4915123456789","code":"123456","purpose":"verify","expires_at":"2026-01-01T00:05:00Z"}
//
// The receiver must check the signature (VerifySignature does) and
// refuse timestamps older than a few minutes, so a captured request
// cannot be replayed to send the same text again.
type WebhookSender struct {
	o      WebhookOptions
	client *http.Client
}

// MinWebhookSecret is the shortest secret accepted.
const MinWebhookSecret = 32

// NewWebhookSender checks the options and returns the sender.
func NewWebhookSender(o WebhookOptions) (*WebhookSender, error) {
	if err := CheckWebhookURL(o.URL); err != nil {
		return nil, err
	}
	if len(o.Secret) < MinWebhookSecret {
		return nil, fmt.Errorf("webhook: the secret has %d characters; use at least %d random ones, e.g. openssl rand -base64 32", len(o.Secret), MinWebhookSecret)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	client := &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		// A redirect could lead the code to plain http or to another
		// host; the receiver's address is configured, never discovered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &WebhookSender{o: o, client: client}, nil
}

// CheckWebhookURL accepts an https URL, or http to this machine (a
// gateway beside Stepgate); codes must not cross a network in clear.
func CheckWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("webhook: %q is not an absolute https URL; write it like https://sms-gateway.example.com/send", raw)
	}
	if u.User != nil {
		return errors.New("webhook: the URL must not contain a user name or password; the signature authenticates Stepgate")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("webhook: %q uses plain http, which would expose codes on the network; use https (http is allowed for localhost only)", raw)
	}
	return nil
}

type webhookBody struct {
	To        string `json:"to"`
	Code      string `json:"code"`
	Purpose   string `json:"purpose"`
	ExpiresAt string `json:"expires_at"`
}

// Send posts the code to the webhook.
func (s *WebhookSender) Send(ctx context.Context, to, code, purpose string) error {
	now := s.o.Now()
	body, err := json.Marshal(webhookBody{To: to, Code: code, Purpose: purpose, ExpiresAt: now.Add(CodeTTL).UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Stepgate")
	req.Header.Set("X-Stepgate-Timestamp", ts)
	req.Header.Set("X-Stepgate-Signature", Sign(s.o.Secret, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: post to %s: %w", redactURL(s.o.URL), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: %s answered %s; check the receiver's logs", redactURL(s.o.URL), resp.Status)
	}
	return nil
}

// redactURL drops the query, where receivers sometimes take an API key.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the webhook"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// Sign returns the X-Stepgate-Signature value for a timestamp and body.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature means a webhook request's signature or timestamp does
// not check out.
var ErrBadSignature = errors.New("webhook signature does not verify or is too old")

// VerifySignature is the receiver's check: the signature must match and
// the timestamp be within tolerance of now, so a captured request
// cannot be replayed later. Receivers written in Go can use it as is.
func VerifySignature(secret, timestamp string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrBadSignature
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return ErrBadSignature
	}
	return nil
}

// LogSender writes codes to the log instead of delivering them. It is for
// development and demos only: anyone who reads the log can sign in as
// anyone who has this method.
type LogSender struct {
	log *slog.Logger
}

// NewLogSender returns a sender that logs codes at info level.
func NewLogSender(log *slog.Logger) *LogSender { return &LogSender{log: log} }

// Notify logs a notice, links included: development only, like codes.
func (s *LogSender) Notify(ctx context.Context, to, subject, body string) error {
	s.log.InfoContext(ctx, "notice written to the log by the development sender; configure otp.email.sender for real delivery",
		"to", to, "subject", subject, "body", body)
	return nil
}

// Send logs the code.
func (s *LogSender) Send(ctx context.Context, to, code, purpose string) error {
	s.log.InfoContext(ctx, "one-time code written to the log by the development sender; configure otp.email.sender or otp.sms.sender for real delivery",
		"to", to, "code", code, "purpose", purpose)
	return nil
}
