package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store/kvspace"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// TestLoginChallenges attacks the sealed passwordless sign-in: a token
// must come back unaltered, from the browser it was sealed for, within
// its lifetime, and be spent once.
func TestLoginChallenges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := secrets.New([]byte("fedcba9876543210fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	lc := NewLoginChallenges(box, st, clock)
	token, err := lc.Seal([]byte(`{"challenge":"abc"}`), "browser-1")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	raw[len(raw)-1] ^= 1
	flipped := base64.RawURLEncoding.EncodeToString(raw)
	foreign, err := NewLoginChallenges(other, st, clock).Seal([]byte(`{"challenge":"abc"}`), "browser-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, binding string
		at                   time.Duration
	}{
		{name: "fail/other-browser", token: token, binding: "browser-2"},
		{name: "fail/no-browser-binding", token: token, binding: ""},
		{name: "fail/altered", token: flipped, binding: "browser-1"},
		{name: "fail/another-key", token: foreign, binding: "browser-1"},
		{name: "fail/not-base64", token: "!!", binding: "browser-1"},
		{name: "fail/empty", token: "", binding: "browser-1"},
		{name: "fail/expired", token: token, binding: "browser-1", at: ceremonyTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc := NewLoginChallenges(box, st, func() time.Time { return now.Add(tc.at) })
			if _, err := lc.Open(tc.token, tc.binding); !errors.Is(err, ErrNoCeremony) {
				t.Fatalf("Open = %v, want ErrNoCeremony", err)
			}
		})
	}
	if _, err := lc.Seal([]byte("x"), ""); err == nil {
		t.Error("fail/seal-unbound: a challenge was sealed for no browser")
	}

	c, err := NewLoginChallenges(box, st, func() time.Time { return now.Add(ceremonyTTL - time.Second) }).Open(token, "browser-1")
	if err != nil || string(c.State) != `{"challenge":"abc"}` || !c.Expires.Equal(now.Add(ceremonyTTL)) {
		t.Fatalf("ok/last-second: %+v, %v", c, err)
	}
	if n, _, _ := st.KVUsage(ctx, kvspace.LoginSpent.Prefix()); n != 0 {
		t.Fatalf("opening stored %d records, want none", n)
	}
	if err := lc.Spend(ctx, c); err != nil {
		t.Fatalf("ok/first-spend: %v", err)
	}
	if err := lc.Spend(ctx, c); !errors.Is(err, ErrNoCeremony) {
		t.Fatalf("fail/second-spend = %v, want ErrNoCeremony", err)
	}
}
