package otp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// inbox is a slog handler that keeps the codes the development LogSender
// writes, by destination: the real sender, read back the way a developer
// reads the log.
type inbox struct {
	mu    sync.Mutex // guards codes
	codes map[string]string
}

func (in *inbox) Enabled(context.Context, slog.Level) bool { return true }
func (in *inbox) WithAttrs([]slog.Attr) slog.Handler       { return in }
func (in *inbox) WithGroup(string) slog.Handler            { return in }
func (in *inbox) Handle(_ context.Context, r slog.Record) error {
	var to, code string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "to":
			to = a.Value.String()
		case "code":
			code = a.Value.String()
		}
		return true
	})
	if code != "" {
		in.mu.Lock()
		in.codes[to] = code
		in.mu.Unlock()
	}
	return nil
}

func (in *inbox) last(to string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.codes[to]
}

type fixture struct {
	st    store.Store
	c     *clock
	box   *secrets.Box
	in    *inbox
	email *Method
	sms   *Method
	alice store.User
	bob   store.User
}

func setup(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{c: &clock{t: time.Date(2026, 11, 22, 12, 0, 10, 0, time.UTC)}, in: &inbox{codes: map[string]string{}}}
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/t.db", sqlite.Options{Now: f.c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.box, _ = secrets.New(bytes.Repeat([]byte{3}, secrets.KeySize))
	d := Deps{Creds: st, KV: st, Box: f.box, HashKey: DeriveHashKey(bytes.Repeat([]byte{3}, secrets.KeySize)), Now: f.c.now}
	sender := NewLogSender(slog.New(f.in))
	if f.email, err = NewEmail(d, sender); err != nil {
		t.Fatal(err)
	}
	if f.sms, err = NewSMS(d, sender); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f.alice, _ = st.CreateUser(ctx, store.User{ID: "u1", Username: "alice", Email: "alice@example.com"})
	f.bob, _ = st.CreateUser(ctx, store.User{ID: "u2", Username: "bob", Email: "bob@example.com"})
	return f
}

func (f *fixture) creds(t testing.TB, u store.User) []store.Credential {
	t.Helper()
	cs, err := f.st.ListCredentials(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// wrong returns a six-digit code that is not right.
func wrong(right string) string {
	if right == "000000" {
		return "111111"
	}
	return "000000"
}

const phone = "+4915123451234"

func TestEnrollSMS(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	ch, err := f.sms.BeginEnroll(ctx, f.alice, "work phone")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Show["kind"] != "phone" {
		t.Fatalf("first step shows %v, want a phone input", ch.Show)
	}
	for _, bad := range []string{"", "015123451234", "+0123456789", "+49 151 abc", "+1234", "+12345678901234567"} {
		if _, err := f.sms.FinishEnroll(ctx, f.alice, ch.State, authn.Response{Code: bad}); !errors.Is(err, ErrPhoneFormat) || !errors.Is(err, authn.ErrInvalid) {
			t.Errorf("fail/phone-%q: %v", bad, err)
		}
	}
	e, err := f.sms.FinishEnroll(ctx, f.alice, ch.State, authn.Response{Code: "+49 (151) 2345-1234"})
	if !errors.Is(err, authn.ErrNextStep) {
		t.Fatalf("phone step: %v, want ErrNextStep", err)
	}
	if e.Show["kind"] != "code" || e.Show["sent_to"] != "+49 ••• ••• 12 34" || e.Show["expires_in"] != "5 minutes" {
		t.Fatalf("code step shows %v", e.Show)
	}
	code := f.in.last(phone)
	if _, err := f.sms.FinishEnroll(ctx, f.alice, ch.State, authn.Response{Code: wrong(code)}); !errors.Is(err, authn.ErrInvalid) {
		t.Fatalf("fail/wrong-code: %v", err)
	}
	if _, err := f.sms.FinishEnroll(ctx, f.alice, ch.State, authn.Response{Code: "+4915199999999"}); !errors.Is(err, authn.ErrInvalid) {
		t.Fatalf("fail/second-number-during-code-step: %v", err)
	}
	if _, err := f.sms.FinishEnroll(ctx, f.alice, ch.State, authn.Response{Code: code}); err != nil {
		t.Fatalf("ok/right-code: %v", err)
	}
	creds := f.creds(t, f.alice)
	if len(creds) != 1 || creds[0].Type != SMSName || creds[0].Name != "work phone" {
		t.Fatalf("credentials = %+v", creds)
	}
	if bytes.Contains(creds[0].Data, []byte("5123451234")) {
		t.Fatal("the phone number is stored in plaintext")
	}
	if m, err := Masked(creds[0], f.box); err != nil || m != "+49 ••• ••• 12 34" {
		t.Fatalf("Masked = %q, %v", m, err)
	}
	if _, err := f.sms.FinishEnroll(ctx, f.alice, ch.State, authn.Response{Code: code}); !errors.Is(err, authn.ErrReplay) {
		t.Fatalf("fail/enrollment-code-replayed: %v", err)
	}
}

func TestEnrollEmail(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	ch, err := f.email.BeginEnroll(ctx, f.alice, "")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Show["kind"] != "code" || ch.Show["sent_to"] != "a•••@example.com" {
		t.Fatalf("shows %v", ch.Show)
	}
	code := f.in.last("alice@example.com")
	if !regexp.MustCompile(`^\d{6}$`).MatchString(code) {
		t.Fatalf("code %q is not six digits", code)
	}
	if bytes.Contains(ch.State, []byte(code)) {
		t.Fatal("the ceremony state holds the code")
	}
	if _, err := f.email.FinishEnroll(ctx, f.alice, ch.State, authn.Response{Code: code[:3] + " " + code[3:]}); err != nil {
		t.Fatalf("ok/code-with-space: %v", err)
	}
	creds := f.creds(t, f.alice)
	if m, _ := Masked(creds[0], f.box); len(creds) != 1 || m != "a•••@example.com" || bytes.Contains(creds[0].Data, []byte("alice")) {
		t.Fatalf("credentials = %+v masked %q", creds, m)
	}
	// A confirmed new address replaces the old one.
	if _, err := f.email.EnrollNow(ctx, f.alice, "", "alice@work.example"); err != nil {
		t.Fatal(err)
	}
	if creds := f.creds(t, f.alice); len(creds) != 1 {
		t.Fatalf("%d email credentials after re-enrolling, want 1", len(creds))
	}

	noMail, _ := f.st.CreateUser(ctx, store.User{ID: "u3", Username: "carol", Email: "Carol <carol@example.com>"})
	if _, err := f.email.BeginEnroll(ctx, noMail, ""); !errors.Is(err, ErrNoEmail) {
		t.Fatalf("fail/address-with-display-name: %v", err)
	}
}

// enrolled returns f with alice on SMS (and bob on the same number when
// shared is true).
func enrollSMS(t testing.TB, f *fixture, u store.User, number string) {
	t.Helper()
	if _, err := f.sms.EnrollNow(context.Background(), u, "", number); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyAttacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	begin := func(t *testing.T, f *fixture, u store.User) (authn.Challenge, string) {
		t.Helper()
		ch, err := f.sms.BeginVerify(ctx, u, f.creds(t, u))
		if err != nil {
			t.Fatal(err)
		}
		return ch, f.in.last(phone)
	}
	verify := func(t *testing.T, f *fixture, u store.User, state []byte, code string) error {
		t.Helper()
		p, err := f.sms.Verify(ctx, u, f.creds(t, u), state, authn.Response{Code: code})
		if err == nil && (p.Method != SMSName || len(p.AMR) != 1 || p.AMR[0] != "sms" || p.PhishingResistant || p.CredentialID == "") {
			t.Errorf("proof = %+v", p)
		}
		return err
	}

	t.Run("ok/then-fail/replay", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		ch, code := begin(t, f, f.alice)
		if ch.Show["kind"] != "code" || ch.Show["sent_to"] != "+49 ••• ••• 12 34" {
			t.Fatalf("shows %v", ch.Show)
		}
		if err := verify(t, f, f.alice, ch.State, code); err != nil {
			t.Fatal(err)
		}
		if err := verify(t, f, f.alice, ch.State, code); !errors.Is(err, authn.ErrReplay) {
			t.Fatalf("a used code was accepted again: %v", err)
		}
	})
	t.Run("fail/sixth-guess-even-if-right", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		ch, code := begin(t, f, f.alice)
		for i := range MaxGuesses {
			if err := verify(t, f, f.alice, ch.State, wrong(code)); !errors.Is(err, authn.ErrInvalid) {
				t.Fatalf("guess %d: %v", i+1, err)
			}
		}
		err := verify(t, f, f.alice, ch.State, code)
		if !errors.Is(err, ErrCodeDead) || !errors.Is(err, authn.ErrThrottled) {
			t.Fatalf("the right code after %d wrong ones: %v, want ErrCodeDead", MaxGuesses, err)
		}
	})
	t.Run("fail/expired", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		ch, code := begin(t, f, f.alice)
		f.c.add(CodeTTL)
		if err := verify(t, f, f.alice, ch.State, code); !errors.Is(err, authn.ErrNoCeremony) {
			t.Fatalf("a code was accepted after %s: %v", CodeTTL, err)
		}
	})
	t.Run("ok/just-before-expiry", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		ch, code := begin(t, f, f.alice)
		f.c.add(CodeTTL - time.Second)
		if err := verify(t, f, f.alice, ch.State, code); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fail/another-users-ceremony", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		enrollSMS(t, f, f.bob, "+4915199999999")
		ch, code := begin(t, f, f.alice)
		if err := verify(t, f, f.bob, ch.State, code); !errors.Is(err, authn.ErrNoCeremony) {
			t.Fatalf("bob completed alice's ceremony with her code: %v", err)
		}
		if err := verify(t, f, f.alice, ch.State, code); err != nil {
			t.Fatalf("bob's attempt spent alice's code: %v", err)
		}
	})
	t.Run("fail/enrollment-code-used-to-sign-in", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		ch, _ := f.email.BeginEnroll(ctx, f.alice, "")
		code := f.in.last("alice@example.com")
		enrollSMS(t, f, f.alice, phone)
		if _, err := f.sms.Verify(ctx, f.alice, f.creds(t, f.alice), ch.State, authn.Response{Code: code}); !errors.Is(err, authn.ErrNoCeremony) {
			t.Fatalf("an email enrollment code signed in by SMS: %v", err)
		}
	})
	t.Run("fail/credential-removed", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		ch, code := begin(t, f, f.alice)
		if err := verify(t, f, f.alice, ch.State, code); err != nil {
			t.Fatal(err)
		}
		ch, code = begin(t, f, f.alice)
		if _, err := f.sms.Verify(ctx, f.alice, nil, ch.State, authn.Response{Code: code}); !errors.Is(err, authn.ErrNotEnrolled) {
			t.Fatalf("a code sent before the phone was removed still signed in: %v", err)
		}
	})
	t.Run("fail/forged-state", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		for _, st := range [][]byte{nil, []byte("{}"), []byte(`{"ref":"guess"}`)} {
			if err := verify(t, f, f.alice, st, "123456"); !errors.Is(err, authn.ErrNoCeremony) {
				t.Errorf("state %q: %v", st, err)
			}
		}
	})
}

func TestSendLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("fail/sixth-code-per-user", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		for i := range MaxSends {
			if _, err := f.sms.BeginVerify(ctx, f.alice, f.creds(t, f.alice)); err != nil {
				t.Fatalf("code %d: %v", i+1, err)
			}
			f.c.add(time.Minute)
		}
		if _, err := f.sms.BeginVerify(ctx, f.alice, f.creds(t, f.alice)); !errors.Is(err, authn.ErrThrottled) {
			t.Fatalf("a sixth code within %s: %v", SendWindow, err)
		}
		f.c.add(2 * SendWindow)
		if _, err := f.sms.BeginVerify(ctx, f.alice, f.creds(t, f.alice)); err != nil {
			t.Fatalf("ok/after-two-windows: %v", err)
		}
	})
	t.Run("fail/one-number-through-many-accounts", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		enrollSMS(t, f, f.bob, phone)
		for range 3 {
			if _, err := f.sms.BeginVerify(ctx, f.alice, f.creds(t, f.alice)); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if _, err := f.sms.BeginVerify(ctx, f.bob, f.creds(t, f.bob)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.sms.BeginVerify(ctx, f.bob, f.creds(t, f.bob)); !errors.Is(err, authn.ErrThrottled) {
			t.Fatalf("a sixth text to one number through a second account: %v", err)
		}
	})
	t.Run("fail/window-edge-burst", func(t *testing.T) {
		t.Parallel()
		// Five codes just before a bucket boundary and five just after
		// would be ten in a minute with plain fixed windows.
		f := setup(t)
		enrollSMS(t, f, f.alice, phone)
		b := f.c.now().Truncate(SendWindow).Add(SendWindow - 30*time.Second)
		f.c.add(b.Sub(f.c.now()))
		for range MaxSends {
			if _, err := f.sms.BeginVerify(ctx, f.alice, f.creds(t, f.alice)); err != nil {
				t.Fatal(err)
			}
		}
		f.c.add(time.Minute)
		if _, err := f.sms.BeginVerify(ctx, f.alice, f.creds(t, f.alice)); !errors.Is(err, authn.ErrThrottled) {
			t.Fatalf("codes burst across a window edge: %v", err)
		}
	})
}

// TestBruteForceDay runs an attacker who knows the password for a
// simulated day: request codes, guess wrong, repeat as fast as the limits
// allow. The guesses that are checked at all stay in the low hundreds,
// four orders of magnitude short of the 10^6 a search needs.
func TestBruteForceDay(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	enrollSMS(t, f, f.alice, phone)
	checked := 0
	end := f.c.now().Add(24 * time.Hour)
	for f.c.now().Before(end) {
		ch, err := f.sms.BeginVerify(ctx, f.alice, f.creds(t, f.alice))
		if err == nil {
			code := f.in.last(phone)
			for range MaxGuesses + 1 {
				err := func() error {
					_, err := f.sms.Verify(ctx, f.alice, f.creds(t, f.alice), ch.State, authn.Response{Code: wrong(code)})
					return err
				}()
				if errors.Is(err, authn.ErrInvalid) {
					checked++
				} else if !errors.Is(err, authn.ErrThrottled) {
					t.Fatalf("unexpected: %v", err)
				}
			}
		} else if !errors.Is(err, authn.ErrThrottled) {
			t.Fatal(err)
		}
		f.c.add(30 * time.Second)
	}
	t.Logf("guesses checked in 24 h: %d (of 10^6 codes)", checked)
	if checked > 200 || checked < MaxGuesses {
		t.Fatalf("%d guesses were checked in a day; the limits should allow about 106", checked)
	}
}

func TestConcurrentAnswers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	enrollSMS(t, f, f.alice, phone)
	ch, err := f.sms.BeginVerify(ctx, f.alice, f.creds(t, f.alice))
	if err != nil {
		t.Fatal(err)
	}
	code := f.in.last(phone)
	creds := f.creds(t, f.alice)
	results := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := f.sms.Verify(ctx, f.alice, creds, ch.State, authn.Response{Code: code})
			results <- err
		}()
	}
	ok := 0
	for range 8 {
		if err := <-results; err == nil {
			ok++
		} else if !errors.Is(err, authn.ErrReplay) && !errors.Is(err, store.ErrConflict) && !strings.Contains(err.Error(), "locked") {
			t.Errorf("unexpected: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("one code was accepted %d times by concurrent requests, want once", ok)
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"ok/germany", "+4915123451234", "+49 ••• ••• 12 34"},
		{"ok/north-america", "+14155550123", "+1 ••• ••• 01 23"},
		{"ok/email", "alice@example.com", "a•••@example.com"},
		{"ok/email-one-letter", "a@example.com", "a•••@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := MaskEmail(tc.in)
			if strings.HasPrefix(tc.in, "+") {
				got = MaskPhone(tc.in)
			}
			if got != tc.want {
				t.Fatalf("mask(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestNewRequiresHashKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := NewEmail(Deps{Creds: f.st, KV: f.st, Box: f.box, HashKey: []byte("short")}, NewLogSender(slog.Default())); err == nil || !strings.Contains(err.Error(), "DeriveHashKey") {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	f := setup(b)
	ctx := context.Background()
	enrollSMS(b, f, f.alice, phone)
	creds := f.creds(b, f.alice)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		f.c.add(2 * SendWindow) // stay under the send limit, as real users do
		ch, err := f.sms.BeginVerify(ctx, f.alice, creds)
		if err != nil {
			b.Fatal(err)
		}
		code := f.in.last(phone)
		b.StartTimer()
		if _, err := f.sms.Verify(ctx, f.alice, creds, ch.State, authn.Response{Code: code}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEmailThroughSMTP runs otp-email end to end: the code travels over
// STARTTLS to a real SMTP server, is read out of the mail and signs in.
func TestEmailThroughSMTP(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	srv, pool := startSMTP(t, true)
	sender, err := NewSMTPSender(SMTPOptions{Host: "127.0.0.1", Port: srv.port(), Username: "mailer", Password: "s3cret", From: "sso@example.com", RootCAs: pool, Now: f.c.now})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewEmail(f.email.Deps, sender)
	if err != nil {
		t.Fatal(err)
	}
	codeIn := func(i int) string {
		t.Helper()
		mails := srv.received()
		if len(mails) != i+1 {
			t.Fatalf("%d mails, want %d", len(mails), i+1)
		}
		c := regexp.MustCompile(`code is (\d{6})`).FindStringSubmatch(mails[i].data)
		if c == nil {
			t.Fatalf("no code in %q", mails[i].data)
		}
		return c[1]
	}
	ch, err := m.BeginEnroll(ctx, f.alice, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.FinishEnroll(ctx, f.alice, ch.State, authn.Response{Code: codeIn(0)}); err != nil {
		t.Fatal(err)
	}
	ch, err = m.BeginVerify(ctx, f.alice, f.creds(t, f.alice))
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Verify(ctx, f.alice, f.creds(t, f.alice), ch.State, authn.Response{Code: codeIn(1)})
	if err != nil || p.Method != EmailName || p.AMR[0] != "otp" {
		t.Fatalf("proof %+v, %v", p, err)
	}
}
