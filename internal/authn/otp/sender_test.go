package otp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
)

// testCert makes a self-signed certificate for 127.0.0.1 and localhost
// and a pool that trusts it.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "stepgate test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// mailMsg is one message the test SMTP server accepted.
type mailMsg struct {
	from, to, data string
	tls            bool
	user           string
}

// smtpServer is a small SMTP server on loopback: EHLO, STARTTLS, AUTH
// PLAIN, MAIL, RCPT, DATA, QUIT.
type smtpServer struct {
	addr     string
	cfg      *tls.Config
	starttls bool // offer STARTTLS
	user     string
	pass     string

	mu    sync.Mutex // guards mails
	mails []mailMsg
}

func startSMTP(t testing.TB, starttls bool) (*smtpServer, *x509.CertPool) {
	t.Helper()
	cert, pool := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &smtpServer{addr: ln.Addr().String(), cfg: &tls.Config{Certificates: []tls.Certificate{cert}}, starttls: starttls, user: "mailer", pass: "s3cret"}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s, pool
}

func (s *smtpServer) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (s *smtpServer) received() []mailMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mailMsg(nil), s.mails...)
}

func (s *smtpServer) serve(conn net.Conn) {
	defer func() { conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	_ = tp.PrintfLine("220 test.local ESMTP")
	var m mailMsg
	secure := false
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ext := []string{"test.local"}
			if s.starttls && !secure {
				ext = append(ext, "STARTTLS")
			}
			ext = append(ext, "AUTH PLAIN")
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				_ = tp.PrintfLine("250%s%s", sep, e)
			}
		case "STARTTLS":
			_ = tp.PrintfLine("220 go ahead")
			tc := tls.Server(conn, s.cfg)
			if tc.Handshake() != nil {
				return
			}
			conn, tp, secure = tc, textproto.NewConn(tc), true
		case "AUTH":
			_, resp, _ := strings.Cut(arg, " ")
			b, _ := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(b), "\x00")
			if len(parts) != 3 || parts[1] != s.user || parts[2] != s.pass {
				_ = tp.PrintfLine("535 authentication failed")
				continue
			}
			m.user = parts[1]
			_ = tp.PrintfLine("235 ok")
		case "MAIL":
			m.from = arg
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			m.to = arg
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go ahead")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m.data, m.tls = string(data), secure
			s.mu.Lock()
			s.mails = append(s.mails, m)
			s.mu.Unlock()
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 not implemented")
		}
	}
}

func TestSMTPSender(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }

	t.Run("ok/starttls-and-auth", func(t *testing.T) {
		t.Parallel()
		srv, pool := startSMTP(t, true)
		s, err := NewSMTPSender(SMTPOptions{Host: "127.0.0.1", Port: srv.port(), Username: "mailer", Password: "s3cret", From: "Stepgate <sso@example.com>", RootCAs: pool, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, "alice@example.com", "123456", authn.PurposeVerify); err != nil {
			t.Fatal(err)
		}
		got := srv.received()
		if len(got) != 1 {
			t.Fatalf("server received %d mails, want 1", len(got))
		}
		m := got[0]
		if !m.tls || m.user != "mailer" || m.from != "FROM:<sso@example.com>" || m.to != "TO:<alice@example.com>" {
			t.Errorf("mail = %+v, want it over TLS, authenticated, from sso@ to alice@", m)
		}
		for _, want := range []string{"Subject: Your Stepgate code", "From: \"Stepgate\" <sso@example.com>", "To: alice@example.com",
			"Your Stepgate code is 123456", "to confirm a Stepgate sign-in", "expires in 5 minutes, at 12:05 UTC", "never asks for this code by phone"} {
			if !strings.Contains(m.data, want) {
				t.Errorf("message lacks %q:\n%s", want, m.data)
			}
		}
	})
	t.Run("fail/untrusted-certificate", func(t *testing.T) {
		t.Parallel()
		srv, _ := startSMTP(t, true)
		s, _ := NewSMTPSender(SMTPOptions{Host: "127.0.0.1", Port: srv.port(), From: "sso@example.com", Now: now})
		if err := s.Send(ctx, "alice@example.com", "123456", authn.PurposeVerify); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("a certificate nobody trusts was accepted: %v", err)
		}
		if n := len(srv.received()); n != 0 {
			t.Fatalf("%d mails delivered", n)
		}
	})
	t.Run("fail/no-starttls", func(t *testing.T) {
		t.Parallel()
		srv, _ := startSMTP(t, false)
		s, _ := NewSMTPSender(SMTPOptions{Host: "127.0.0.1", Port: srv.port(), From: "sso@example.com", Now: now})
		if err := s.Send(ctx, "alice@example.com", "123456", authn.PurposeVerify); err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
			t.Fatalf("a code was mailed without TLS: %v", err)
		}
		if n := len(srv.received()); n != 0 {
			t.Fatalf("%d mails delivered in clear text", n)
		}
	})
	t.Run("ok/insecure-loopback-relay", func(t *testing.T) {
		t.Parallel()
		srv, _ := startSMTP(t, false)
		s, err := NewSMTPSender(SMTPOptions{Host: "127.0.0.1", Port: srv.port(), From: "sso@example.com", InsecureLoopback: true, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, "alice@example.com", "123456", authn.PurposeEnroll); err != nil {
			t.Fatal(err)
		}
		if got := srv.received(); len(got) != 1 || got[0].tls || !strings.Contains(got[0].data, "to confirm this address") {
			t.Fatalf("received %+v", got)
		}
	})
	t.Run("fail/password-without-tls", func(t *testing.T) {
		t.Parallel()
		srv, _ := startSMTP(t, false)
		s, _ := NewSMTPSender(SMTPOptions{Host: "127.0.0.1", Port: srv.port(), Username: "mailer", Password: "s3cret", From: "sso@example.com", InsecureLoopback: true, Now: now})
		if err := s.Send(ctx, "alice@example.com", "123456", authn.PurposeVerify); err == nil || !strings.Contains(err.Error(), "never sent in clear text") {
			t.Fatalf("the password was offered without TLS: %v", err)
		}
	})
	t.Run("fail/header-injection-in-recipient", func(t *testing.T) {
		t.Parallel()
		srv, pool := startSMTP(t, true)
		s, _ := NewSMTPSender(SMTPOptions{Host: "127.0.0.1", Port: srv.port(), From: "sso@example.com", RootCAs: pool, Now: now})
		if err := s.Send(ctx, "alice@example.com\r\nBcc: eve@example.com", "123456", authn.PurposeVerify); err == nil {
			t.Fatal("a recipient with a line break was accepted")
		}
	})
}

func TestNewSMTPSender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    SMTPOptions
		want string
	}{
		{"ok/relay", SMTPOptions{Host: "smtp.example.com", Port: 587, From: "sso@example.com"}, ""},
		{"ok/insecure-localhost", SMTPOptions{Host: "localhost", Port: 25, From: "sso@example.com", InsecureLoopback: true}, ""},
		{"ok/insecure-ipv6-loopback", SMTPOptions{Host: "::1", Port: 25, From: "sso@example.com", InsecureLoopback: true}, ""},
		{"fail/insecure-remote", SMTPOptions{Host: "smtp.example.com", Port: 25, From: "sso@example.com", InsecureLoopback: true}, "only allowed for localhost"},
		{"fail/no-host", SMTPOptions{Port: 587, From: "sso@example.com"}, "otp.smtp.host"},
		{"fail/port", SMTPOptions{Host: "smtp.example.com", From: "sso@example.com"}, "out of range"},
		{"fail/from", SMTPOptions{Host: "smtp.example.com", Port: 587, From: "not an address"}, "is not an address"},
		{"fail/from-header-injection", SMTPOptions{Host: "smtp.example.com", Port: 587, From: "sso@example.com\r\nBcc: eve@example.com"}, "one line"},
		{"fail/password-alone", SMTPOptions{Host: "smtp.example.com", Port: 587, From: "sso@example.com", Password: "x"}, "username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewSMTPSender(tc.o)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// webhookReceiver is an SMS gateway stand-in behind real TLS that checks
// every signature, as a production receiver must.
type webhookReceiver struct {
	srv    *httptest.Server
	secret string
	now    func() time.Time
	status int

	mu  sync.Mutex // guards got
	got []webhookBody
}

func startWebhook(t testing.TB, secret string, now func() time.Time) *webhookReceiver {
	t.Helper()
	wr := &webhookReceiver{secret: secret, now: now, status: http.StatusAccepted}
	wr.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if err := VerifySignature(wr.secret, r.Header.Get("X-Stepgate-Timestamp"), body, r.Header.Get("X-Stepgate-Signature"), wr.now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var b webhookBody
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		wr.mu.Lock()
		wr.got = append(wr.got, b)
		status := wr.status
		wr.mu.Unlock()
		w.WriteHeader(status)
	}))
	// The untrusted-certificate case fails the handshake on purpose.
	wr.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	wr.srv.StartTLS()
	t.Cleanup(wr.srv.Close)
	return wr
}

func (wr *webhookReceiver) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(wr.srv.Certificate())
	return p
}

func (wr *webhookReceiver) received() []webhookBody {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return append([]webhookBody(nil), wr.got...)
}

const testSecret = "0123456789abcdef0123456789abcdef"

func TestWebhookSender(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }

	t.Run("ok/signed-post", func(t *testing.T) {
		t.Parallel()
		wr := startWebhook(t, testSecret, now)
		s, err := NewWebhookSender(WebhookOptions{URL: wr.srv.URL + "/send", Secret: testSecret, RootCAs: wr.pool(), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, "+4915123451234", "654321", authn.PurposeVerify); err != nil {
			t.Fatal(err)
		}
		want := webhookBody{To: "+4915123451234", Code: "654321", Purpose: "verify", ExpiresAt: "2026-11-22T12:05:00Z"}
		if got := wr.received(); len(got) != 1 || got[0] != want {
			t.Fatalf("receiver got %+v, want %+v", got, want)
		}
	})
	t.Run("fail/wrong-secret-is-refused-by-receiver", func(t *testing.T) {
		t.Parallel()
		wr := startWebhook(t, testSecret, now)
		s, _ := NewWebhookSender(WebhookOptions{URL: wr.srv.URL, Secret: strings.Repeat("x", 32), RootCAs: wr.pool(), Now: now})
		err := s.Send(ctx, "+4915123451234", "654321", authn.PurposeVerify)
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("err = %v, want the receiver's 401 named", err)
		}
	})
	t.Run("fail/non-2xx", func(t *testing.T) {
		t.Parallel()
		wr := startWebhook(t, testSecret, now)
		wr.status = http.StatusBadGateway
		s, _ := NewWebhookSender(WebhookOptions{URL: wr.srv.URL + "/send?api_key=hidden", Secret: testSecret, RootCAs: wr.pool(), Now: now})
		err := s.Send(ctx, "+4915123451234", "654321", authn.PurposeVerify)
		if err == nil || !strings.Contains(err.Error(), "502 Bad Gateway") || strings.Contains(err.Error(), "hidden") {
			t.Fatalf("err = %v, want the status named and the query left out", err)
		}
	})
	t.Run("fail/redirect-not-followed", func(t *testing.T) {
		t.Parallel()
		target := startWebhook(t, testSecret, now)
		redir := httptest.NewTLSServer(http.RedirectHandler(target.srv.URL, http.StatusTemporaryRedirect))
		t.Cleanup(redir.Close)
		pool := target.pool()
		pool.AddCert(redir.Certificate())
		s, _ := NewWebhookSender(WebhookOptions{URL: redir.URL, Secret: testSecret, RootCAs: pool, Now: now})
		if err := s.Send(ctx, "+4915123451234", "654321", authn.PurposeVerify); err == nil || !strings.Contains(err.Error(), "307") {
			t.Fatalf("err = %v, want the redirect refused", err)
		}
		if n := len(target.received()); n != 0 {
			t.Fatalf("the code followed a redirect to another receiver (%d posts)", n)
		}
	})
	t.Run("fail/untrusted-certificate", func(t *testing.T) {
		t.Parallel()
		wr := startWebhook(t, testSecret, now)
		s, _ := NewWebhookSender(WebhookOptions{URL: wr.srv.URL, Secret: testSecret, Now: now})
		if err := s.Send(ctx, "+4915123451234", "654321", authn.PurposeVerify); err == nil {
			t.Fatal("a receiver with an untrusted certificate got the code")
		}
	})
	t.Run("fail/timeout", func(t *testing.T) {
		t.Parallel()
		block := make(chan struct{})
		slow := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
		t.Cleanup(func() { close(block); slow.Close() })
		p := x509.NewCertPool()
		p.AddCert(slow.Certificate())
		s, _ := NewWebhookSender(WebhookOptions{URL: slow.URL, Secret: testSecret, RootCAs: p, Timeout: 200 * time.Millisecond, Now: now})
		if err := s.Send(ctx, "+4915123451234", "654321", authn.PurposeVerify); err == nil {
			t.Fatal("a receiver that never answers did not time out")
		}
	})
}

func TestNewWebhookSender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, secret, want string
	}{
		{"ok/https", "https://sms.example.com/send", testSecret, ""},
		{"ok/http-localhost", "http://localhost:9000/send", testSecret, ""},
		{"ok/http-loopback-ip", "http://127.0.0.1:9000/send", testSecret, ""},
		{"fail/http-remote", "http://sms.example.com/send", testSecret, "plain http"},
		{"fail/relative", "/send", testSecret, "absolute https URL"},
		{"fail/userinfo", "https://u:p@sms.example.com/", testSecret, "user name or password"},
		{"fail/short-secret", "https://sms.example.com/send", "short", "at least 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewWebhookSender(WebhookOptions{URL: tc.url, Secret: tc.secret})
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"to":"+4915123451234","code":"123456"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := Sign(testSecret, ts, body)
	for _, tc := range []struct {
		name      string
		ts        string
		body      []byte
		sig       string
		wantValid bool
	}{
		{"ok/fresh", ts, body, sig, true},
		{"fail/altered-body", ts, bytes.Replace(body, []byte("123456"), []byte("000000"), 1), sig, false},
		{"fail/moved-timestamp", strconv.FormatInt(now.Unix()+1, 10), body, sig, false},
		{"fail/replayed-later", ts, body, sig, false},
		{"fail/no-prefix", ts, body, strings.TrimPrefix(sig, "v1="), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			at := now
			if tc.name == "fail/replayed-later" {
				at = now.Add(10 * time.Minute)
			}
			err := VerifySignature(testSecret, tc.ts, tc.body, tc.sig, at, 5*time.Minute)
			if (err == nil) != tc.wantValid {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestLogSender(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := NewLogSender(slog.New(slog.NewTextHandler(&buf, nil)))
	if err := s.Send(context.Background(), "alice@example.com", "123456", authn.PurposeVerify); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "code=123456") || !strings.Contains(out, "development") {
		t.Fatalf("log line %q must carry the code at info and say it is for development", out)
	}
}

// TestSMTPNotify: a notice goes over the same checked channel as a code,
// with its own subject; a subject with a line break (a header
// injection) and an address with extra parts are refused unsent.
func TestSMTPNotify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := func() time.Time { return time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC) }
	srv, pool := startSMTP(t, true)
	s, err := NewSMTPSender(SMTPOptions{Host: "127.0.0.1", Port: srv.port(), From: "Stepgate <sso@example.com>", RootCAs: pool, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Notify(ctx, "alice@example.com", "A sign-in method was added to your account", "Method: Authenticator app\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ to, subject string }{
		{"alice@example.com", "hi\r\nBcc: eve@example.com"},
		{"alice@example.com>\r\nRCPT TO:<eve@example.com", "hi"},
	} {
		if err := s.Notify(ctx, bad.to, bad.subject, "x"); err == nil {
			t.Errorf("attack/injection %q %q: sent", bad.to, bad.subject)
		}
	}
	got := srv.received()
	if len(got) != 1 || !got[0].tls {
		t.Fatalf("server received %d mails, want the one notice over TLS", len(got))
	}
	for _, want := range []string{"Subject: A sign-in method was added to your account", "To: alice@example.com", "Method: Authenticator app", "Auto-Submitted: auto-generated"} {
		if !strings.Contains(got[0].data, want) {
			t.Errorf("notice lacks %q:\n%s", want, got[0].data)
		}
	}
}
