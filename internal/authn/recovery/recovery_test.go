package recovery

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

func setup(t testing.TB) (*Method, store.Store, store.User) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/t.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, _ := st.CreateUser(context.Background(), store.User{ID: "u1", Username: "alice"})
	return New(st, nil), st, u
}

func TestRecoveryCodes(t *testing.T) {
	m, st, u := setup(t)
	ctx := context.Background()
	codes, err := m.Generate(ctx, u)
	if err != nil || len(codes) != Count {
		t.Fatalf("Generate = %v, %v", codes, err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 19 || seen[c] {
			t.Fatalf("code %q is malformed or repeated", c)
		}
		seen[c] = true
	}
	creds, _ := st.ListCredentials(ctx, u.ID)
	for _, c := range codes {
		if bytes.Contains(creds[0].Data, []byte(c)) || bytes.Contains(creds[0].Data, []byte(normalize(c))) {
			t.Fatal("a recovery code is stored in plaintext")
		}
	}
	verify := func(code string) error {
		creds, _ := st.ListCredentials(ctx, u.ID)
		_, err := m.Verify(ctx, u, creds, nil, authn.Response{Code: code})
		return err
	}
	// Typed loosely: upper case and spaces instead of dashes.
	if err := verify(strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))); err != nil {
		t.Fatalf("ok/loosely-typed: %v", err)
	}
	if err := verify(codes[3]); !errors.Is(err, authn.ErrReplay) {
		t.Fatalf("fail/reuse: %v", err)
	}
	if err := verify("aaaa-bbbb-cccc-dddd"); !errors.Is(err, authn.ErrInvalid) {
		t.Fatalf("fail/unknown: %v", err)
	}
	creds, _ = st.ListCredentials(ctx, u.ID)
	if n := Remaining(creds[0]); n != Count-1 {
		t.Fatalf("Remaining = %d, want %d", n, Count-1)
	}
	// A new set replaces the old: old codes stop working.
	if _, err := m.Generate(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := verify(codes[4]); !errors.Is(err, authn.ErrInvalid) {
		t.Fatalf("fail/old-set-after-regeneration: %v", err)
	}
	if creds, _ := st.ListCredentials(ctx, u.ID); len(creds) != 1 {
		t.Fatalf("user has %d recovery sets, want 1", len(creds))
	}
}

func BenchmarkVerify(b *testing.B) {
	m, st, u := setup(b)
	ctx := context.Background()
	codes, _ := m.Generate(ctx, u)
	creds, _ := st.ListCredentials(ctx, u.ID)
	b.ReportAllocs()
	for b.Loop() {
		// A wrong code walks every hash: the worst case.
		if _, err := m.Verify(ctx, u, creds, nil, authn.Response{Code: codes[0] + "x"}); !errors.Is(err, authn.ErrInvalid) {
			b.Fatal(err)
		}
	}
}
