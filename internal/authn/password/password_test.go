package password

import (
	"context"
	"errors"
	"strings"
	"testing"
)

var fast = Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewHasher(fast)
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string with our parameters", enc)
	}
	if again, _ := h.Hash(ctx, "correct horse battery staple"); again == enc {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name, password string
		ok             bool
	}{
		{"ok/same", "correct horse battery staple", true},
		{"fail/other", "correct horse battery stapl", false},
		{"fail/empty", "", false},
		{"fail/case", "Correct horse battery staple", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tc.password, enc)
			if err != nil || ok != tc.ok || rehash {
				t.Fatalf("Verify = %v, %v, %v; want %v, false, nil", ok, rehash, err, tc.ok)
			}
		})
	}
}

func TestUnicodeNormalization(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewHasher(fast)
	enc, _ := h.Hash(ctx, "caf\u00e9-lait-2024")                     // composed é
	if ok, _, _ := h.Verify(ctx, "cafe\u0301-lait-2024", enc); !ok { // e + combining acute
		t.Fatal("the decomposed spelling of the same password was refused")
	}
}

func TestRehashWhenParametersChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := NewHasher(fast)
	enc, _ := old.Hash(ctx, "s3cret-passphrase")
	stronger := NewHasher(Params{Time: 2, MemoryKiB: 128, Threads: 1})
	ok, rehash, err := stronger.Verify(ctx, "s3cret-passphrase", enc)
	if err != nil || !ok || !rehash {
		t.Fatalf("Verify with new params = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	if ok, rehash, _ := stronger.Verify(ctx, "wrong", enc); ok || rehash {
		t.Fatal("a wrong password asked for a rehash")
	}
}

func TestMalformedHashes(t *testing.T) {
	t.Parallel()
	h := NewHasher(fast)
	for _, enc := range []string{
		"", "plaintext", "$2a$10$bcrypthashbcrypthashbcrypthash",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", // memory bomb
		"$argon2id$v=19$m=64,t=1000000,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", // time bomb
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5",
	} {
		if ok, _, err := h.Verify(context.Background(), "x", enc); ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want false, ErrMalformedHash", enc, ok, err)
		}
	}
}

func TestTooLong(t *testing.T) {
	t.Parallel()
	h := NewHasher(fast)
	if _, err := h.Hash(context.Background(), strings.Repeat("a", MaxBytes+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Hash of an over-long password = %v, want ErrTooLong", err)
	}
}

func FuzzVerify(f *testing.F) {
	h := NewHasher(fast)
	good, _ := h.Hash(context.Background(), "pw")
	f.Add("pw", good)
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, pw, enc string) {
		ok, _, err := h.Verify(context.Background(), pw, enc)
		if ok && err != nil {
			t.Fatal("ok with an error")
		}
	})
}

func BenchmarkHashDefault(b *testing.B) {
	h := NewHasher(Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1})
	for b.Loop() {
		_, _ = h.Hash(context.Background(), "correct horse battery staple")
	}
}

// BenchmarkVerify is the cost of checking a password at sign-in or
// step-up with the default parameters: the price an attacker pays per
// guess against a stolen hash, and the server per sign-in.
func BenchmarkVerify(b *testing.B) {
	h := NewHasher(Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1})
	enc, err := h.Hash(context.Background(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(context.Background(), "correct horse battery staple", enc); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
