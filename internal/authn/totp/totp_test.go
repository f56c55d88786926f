package totp

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t *testing.T) (*Method, *clock, store.Store, store.User) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 22, 12, 0, 10, 0, time.UTC)}
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/t.db", sqlite.Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secrets.New(bytes.Repeat([]byte{3}, secrets.KeySize))
	u, err := st.CreateUser(context.Background(), store.User{ID: "u1", Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	return New(st, box, "Stepgate", c.now), c, st, u
}

// enroll runs the enrollment ceremony and returns the secret.
func enroll(t *testing.T, m *Method, c *clock, st store.Store, u store.User) (string, []store.Credential) {
	t.Helper()
	ctx := context.Background()
	ch, err := m.BeginEnroll(ctx, u, "phone")
	if err != nil {
		t.Fatal(err)
	}
	secret := ch.Show["secret"].(string)
	if !strings.HasPrefix(ch.Show["qr"].(string), "data:image/png;base64,") || !strings.Contains(ch.Show["uri"].(string), "otpauth://totp/") {
		t.Fatalf("enrollment shows %v", ch.Show)
	}
	if _, err := m.FinishEnroll(ctx, u, ch.State, authn.Response{Code: "000000"}); !errors.Is(err, authn.ErrInvalid) {
		t.Fatalf("a wrong first code enrolled: %v", err)
	}
	code, _ := totp.GenerateCodeCustom(secret, c.t, opts)
	if _, err := m.FinishEnroll(ctx, u, ch.State, authn.Response{Code: code}); err != nil {
		t.Fatal(err)
	}
	creds, _ := st.ListCredentials(ctx, u.ID)
	return secret, creds
}

func TestVerify(t *testing.T) {
	m, c, st, u := setup(t)
	ctx := context.Background()
	secret, creds := enroll(t, m, c, st, u)
	if bytes.Contains(creds[0].Data, []byte(secret)) {
		t.Fatal("the seed is stored in plaintext")
	}
	at := func(d time.Duration) string {
		code, _ := totp.GenerateCodeCustom(secret, c.t.Add(d), opts)
		return code
	}
	verify := func(code string) error {
		creds, _ := st.ListCredentials(ctx, u.ID)
		_, err := m.Verify(ctx, u, creds, nil, authn.Response{Code: code})
		return err
	}

	// The enrollment code's step is used: the same code again is a replay.
	if err := verify(at(0)); !errors.Is(err, authn.ErrReplay) {
		t.Fatalf("fail/enrollment-code-replayed: %v", err)
	}
	c.t = c.t.Add(period)
	if err := verify(at(0)); err != nil {
		t.Fatalf("ok/current-step: %v", err)
	}
	if err := verify(at(0)); !errors.Is(err, authn.ErrReplay) {
		t.Fatalf("fail/same-code-twice: %v", err)
	}
	c.t = c.t.Add(period)
	if err := verify(at(-period)); !errors.Is(err, authn.ErrReplay) {
		t.Fatalf("fail/previous-step-after-newer-accepted: %v", err)
	}
	if err := verify(at(period)); err != nil {
		t.Fatalf("ok/next-step-within-skew: %v", err)
	}
	c.t = c.t.Add(10 * period)
	if err := verify(at(-3 * period)); !errors.Is(err, authn.ErrInvalid) {
		t.Fatalf("fail/outside-window: %v", err)
	}
	if err := verify(at(3 * period)); !errors.Is(err, authn.ErrInvalid) {
		t.Fatalf("fail/future-outside-window: %v", err)
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if err := verify(bad); !errors.Is(err, authn.ErrInvalid) {
			t.Errorf("fail/malformed %q: %v", bad, err)
		}
	}
}

func TestConcurrentReplay(t *testing.T) {
	m, c, st, u := setup(t)
	ctx := context.Background()
	secret, _ := enroll(t, m, c, st, u)
	c.t = c.t.Add(period)
	code, _ := totp.GenerateCodeCustom(secret, c.t, opts)
	results := make(chan error, 8)
	for range 8 {
		go func() {
			creds, _ := st.ListCredentials(ctx, u.ID)
			_, err := m.Verify(ctx, u, creds, nil, authn.Response{Code: code})
			results <- err
		}()
	}
	ok := 0
	for range 8 {
		if <-results == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("one code was accepted %d times by concurrent requests, want once", ok)
	}
}

func BenchmarkVerify(b *testing.B) {
	st, _ := sqlite.Open(context.Background(), b.TempDir()+"/t.db", sqlite.Options{})
	defer st.Close()
	box, _ := secrets.New(bytes.Repeat([]byte{3}, secrets.KeySize))
	c := &clock{t: time.Now()}
	m := New(st, box, "Stepgate", c.now)
	u, _ := st.CreateUser(context.Background(), store.User{ID: "u1", Username: "alice"})
	secret, _, err := m.EnrollNow(context.Background(), u, "phone")
	if err != nil {
		b.Fatal(err)
	}
	creds, _ := st.ListCredentials(context.Background(), u.ID)
	b.ReportAllocs()
	for b.Loop() {
		c.t = c.t.Add(period) // a new step each time, as a real user's would be
		code, _ := totp.GenerateCodeCustom(secret, c.t, opts)
		if _, err := m.Verify(context.Background(), u, creds, nil, authn.Response{Code: code}); err != nil {
			b.Fatal(err)
		}
	}
}
