package kvspace_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// TestCatalogueIsPrefixFree: were one prefix the start of another, an id
// of the shorter namespace could be chosen to equal a key of the longer
// one, and a listing of the shorter would return the other's entries.
func TestCatalogueIsPrefixFree(t *testing.T) {
	t.Parallel()
	all := kvspace.All()
	names := map[string]bool{}
	for i, a := range all {
		if names[a.Name()] {
			t.Errorf("two namespaces are named %s", a.Name())
		}
		names[a.Name()] = true
		for j, b := range all {
			if i != j && strings.HasPrefix(b.Prefix(), a.Prefix()) {
				t.Errorf("prefix %q of %s starts %q of %s", a.Prefix(), a.Name(), b.Prefix(), b.Name())
			}
		}
	}
	for _, s := range all {
		under := strings.HasPrefix(s.Prefix(), kvspace.GatewayKept)
		kept := s.Name() == kvspace.GatewayKeptAnonymous.Name() || s.Name() == kvspace.GatewayKeptUser.Name()
		if under != kept {
			t.Errorf("%s (%q): only kept requests may fall under the total quota's prefix %q", s.Name(), s.Prefix(), kvspace.GatewayKept)
		}
	}
}

// TestCatalogueSaysEverything: every namespace says what it holds, its
// value type, its expiry, its writer, and has a sample that makes a key.
func TestCatalogueSaysEverything(t *testing.T) {
	t.Parallel()
	for _, s := range kvspace.All() {
		t.Run(s.Name(), func(t *testing.T) {
			t.Parallel()
			for field, v := range map[string]string{"holds": s.Holds(), "value": s.Value(), "expires": s.ExpiresWhen(), "writer": s.Writer()} {
				if strings.TrimSpace(v) == "" {
					t.Errorf("says nothing of %s", field)
				}
			}
			if !strings.HasSuffix(s.Prefix(), kvspace.Separator) && !s.Fixed() {
				t.Errorf("prefix %q does not end in %q, so its ids run into the prefix", s.Prefix(), kvspace.Separator)
			}
			id, value := s.Sample()
			key, err := s.Key(id...)
			if err != nil || !strings.HasPrefix(key, s.Prefix()) {
				t.Errorf("sample id %q: key %q, %v", id, key, err)
			}
			if len(value) == 0 {
				t.Error("no sample value")
			}
			if (s.Expiry() == kvspace.Renewed) != s.Uses(kvspace.UseRenew) {
				t.Errorf("expiry rule %d disagrees with renewing: %v", s.Expiry(), s.Uses(kvspace.UseRenew))
			}
		})
	}
}

// TestKeysCannotEscape performs the escapes an id chosen by a client
// could try: into another owner's entries, another record, or a shape
// the backends store differently.
func TestKeysCannotEscape(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", kvspace.MaxSegment+1)
	tests := []struct {
		name  string
		space kvspace.Space
		id    []string
		want  string // the key; empty when refused
	}{
		{"ok/one-segment", kvspace.AccessPass, []string{"u1"}, "tap/u1"},
		{"ok/two-segments", kvspace.PushApproval, []string{"u1", "a1"}, "authn/push/approval/u1/a1"},
		{"ok/varying-count-as-one-string", kvspace.Throttle, []string{"otp/u1"}, "authn/throttle/otp/u1"},
		{"ok/varying-count-one", kvspace.Throttle, []string{"login:alice"}, "authn/throttle/login:alice"},
		{"ok/ipv6-network", kvspace.RiskFailedNetwork, []string{"2001:db8::", "48"}, "risk/fail/net/2001:db8::/48"},
		{"ok/fixed", kvspace.AuditHead, nil, "audit/head"},
		{"ok/hashed-secret-with-separator", kvspace.GatewayTicket, []string{"a/b\x00c"}, ""},
		{"fail/separator-into-other-approval", kvspace.PushApproval, []string{"u1", "a1/x"}, ""},
		{"fail/owner-with-separator", kvspace.PushApproval, []string{"u1/a1", "x"}, ""},
		{"fail/segments-in-one-string-of-fixed-count", kvspace.PushApproval, []string{"u1/a1"}, ""},
		{"fail/too-many-segments", kvspace.Throttle, []string{"a/b/c"}, ""},
		{"fail/empty", kvspace.AccessPass, []string{""}, ""},
		{"fail/no-id", kvspace.AccessPass, nil, ""},
		{"fail/empty-segment", kvspace.Throttle, []string{"login:a//b"}, ""},
		{"fail/trailing-separator", kvspace.AccessPass, []string{"u1/"}, ""},
		{"fail/nul", kvspace.AccessPass, []string{"u1\x00"}, ""},
		{"fail/newline", kvspace.Throttle, []string{"login:a\nb"}, ""},
		{"fail/delete-char", kvspace.Throttle, []string{"login:a\x7fb"}, ""},
		{"fail/c1-control", kvspace.Throttle, []string{"login:a\u0085b"}, ""},
		{"fail/invalid-utf8", kvspace.Throttle, []string{"login:\xff"}, ""},
		{"fail/too-long", kvspace.Throttle, []string{long}, ""},
		{"fail/id-on-fixed", kvspace.AuditHead, []string{"x"}, ""},
		{"fail/two-secrets", kvspace.GatewayTicket, []string{"a", "b"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, err := tc.space.Key(tc.id...)
			switch {
			case strings.HasPrefix(tc.name, "fail/"):
				if !errors.Is(err, kvspace.ErrBadKey) {
					t.Fatalf("Key(%q) = %q, %v; want ErrBadKey", tc.id, key, err)
				}
			case err != nil:
				t.Fatalf("Key(%q): %v", tc.id, err)
			case tc.space.Hashed():
				sum := sha256.Sum256([]byte(tc.id[0]))
				if want := tc.space.Prefix() + hex.EncodeToString(sum[:]); key != want {
					t.Fatalf("hashed key %q, want the prefix and the SHA-256 %q", key, want)
				}
			case key != tc.want:
				t.Fatalf("Key(%q) = %q, want %q (stored keys must not change)", tc.id, key, tc.want)
			}
		})
	}
}

// refusingKV fails the test when any call reaches it.
type refusingKV struct{ t *testing.T }

func (k refusingKV) fail() { k.t.Helper(); k.t.Fatal("a bad key reached the store") }
func (k refusingKV) GetKV(context.Context, string) (store.KVEntry, error) {
	k.fail()
	return store.KVEntry{}, nil
}
func (k refusingKV) CreateKV(context.Context, string, []byte, time.Time) (store.KVEntry, error) {
	k.fail()
	return store.KVEntry{}, nil
}
func (k refusingKV) UpdateKV(context.Context, string, func([]byte) ([]byte, error)) (store.KVEntry, error) {
	k.fail()
	return store.KVEntry{}, nil
}
func (k refusingKV) RenewKV(context.Context, string, func([]byte) ([]byte, time.Time, error)) (store.KVEntry, error) {
	k.fail()
	return store.KVEntry{}, nil
}
func (k refusingKV) DeleteKV(context.Context, string) error { k.fail(); return nil }
func (k refusingKV) ListKV(context.Context, string) ([]store.KVEntry, error) {
	k.fail()
	return nil, nil
}

// TestBadKeysNeverReachTheStore: every operation on a bad id fails before
// the store; reads and changes also say not found, so a made-up id is
// answered as any unknown one.
func TestBadKeysNeverReachTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := refusingKV{t}
	ref := kvspace.RevokedBefore.At("u1/../u2")
	if _, err := ref.Get(ctx, kv); !errors.Is(err, kvspace.ErrBadKey) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get = %v, want ErrBadKey and ErrNotFound", err)
	}
	if ok, err := ref.Exists(ctx, kv); ok || err != nil {
		t.Errorf("Exists = %v, %v; want false", ok, err)
	}
	if err := ref.Create(ctx, kv, time.Now(), time.Time{}); !errors.Is(err, kvspace.ErrBadKey) || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Create = %v, want ErrBadKey only", err)
	}
	if err := ref.Update(ctx, kv, func(v time.Time) (time.Time, error) { return v, nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update = %v, want ErrNotFound", err)
	}
	if err := ref.Renew(ctx, kv, func(v time.Time) (time.Time, time.Time, error) { return v, v, nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Renew = %v, want ErrNotFound", err)
	}
	if err := ref.Delete(ctx, kv); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete = %v, want ErrNotFound", err)
	}
	if _, err := kvspace.JSON[struct{}](kvspace.PushApproval).List(ctx, kv, "u1/x"); !errors.Is(err, kvspace.ErrBadKey) {
		t.Errorf("List of an owner with the separator = %v, want ErrBadKey", err)
	}
	if _, err := kvspace.JSON[struct{}](kvspace.PushApproval).List(ctx, kv, "u1", "a1"); !errors.Is(err, kvspace.ErrBadKey) {
		t.Errorf("List by a whole id = %v, want ErrBadKey", err)
	}
	if _, err := kvspace.RevokedBefore.AtDigest([32]byte{}).Get(ctx, kv); !errors.Is(err, kvspace.ErrBadKey) {
		t.Errorf("AtDigest on a namespace of plain ids = %v, want ErrBadKey", err)
	}
}

// TestValuesKeepTheirBytes: the typed values encode to the bytes stored
// before the catalogue, so records written then stay readable.
func TestValuesKeepTheirBytes(t *testing.T) {
	t.Parallel()
	at := time.UnixMicro(1767322800123456).UTC()
	check := func(t *testing.T, got []byte, err error, want string) {
		t.Helper()
		if err != nil || string(got) != want {
			t.Fatalf("encoded %q, %v; want %q", got, err, want)
		}
	}
	t.Run("ok/micros", func(t *testing.T) {
		b, err := kvspace.RevokedBefore.Encode(at)
		check(t, b, err, "1767322800123456")
		if back, err := kvspace.RevokedBefore.Decode(b); err != nil || !back.Equal(at) {
			t.Fatalf("decoded %v, %v", back, err)
		}
	})
	t.Run("ok/counter", func(t *testing.T) {
		b, err := kvspace.PolicyGeneration.Encode(12)
		check(t, b, err, "12")
	})
	t.Run("ok/marks", func(t *testing.T) {
		b, err := kvspace.GatewayOnce.Encode(kvspace.Mark{})
		check(t, b, err, "1")
		b, err = kvspace.LoginSpent.Encode(kvspace.Mark{})
		check(t, b, err, "\x01")
	})
	t.Run("ok/json-time", func(t *testing.T) {
		b, err := kvspace.GatewayAsked.Encode(at)
		check(t, b, err, `"2026-01-02T03:00:00.123456Z"`)
	})
	t.Run("fail/corrupt", func(t *testing.T) {
		if _, err := kvspace.RevokedBefore.Decode([]byte("soon")); !errors.Is(err, kvspace.ErrCorrupt) {
			t.Fatalf("decoding a corrupt time = %v, want ErrCorrupt", err)
		}
		if _, err := kvspace.OIDCAssertion.Decode([]byte("2")); !errors.Is(err, kvspace.ErrCorrupt) {
			t.Fatalf("decoding another mark = %v, want ErrCorrupt", err)
		}
	})
}

// TestTypedSamples: the namespaces whose type the catalogue owns show
// samples their codec writes. (Writers check theirs in TestKVShapes.)
func TestTypedSamples(t *testing.T) {
	t.Parallel()
	for name, check := range map[string]func() error{
		"oidc-revoked-token": kvspace.OIDCRevokedToken.CheckSample, "oidc-assertion": kvspace.OIDCAssertion.CheckSample,
		"policy-generation": kvspace.PolicyGeneration.CheckSample, "gateway-keep-rate": kvspace.GatewayKeepRate.CheckSample,
		"gateway-once": kvspace.GatewayOnce.CheckSample, "gateway-asked": kvspace.GatewayAsked.CheckSample,
		"login-spent": kvspace.LoginSpent.CheckSample, "otp-sent": kvspace.OTPSent.CheckSample,
		"revoked-before": kvspace.RevokedBefore.CheckSample, "secret": kvspace.Secret.CheckSample,
		"gateway-kept-user": kvspace.GatewayKeptUser.CheckSample, "gateway-answer": kvspace.GatewayAnswer.CheckSample,
	} {
		if err := check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := kvspace.JSON[struct{ A int }](kvspace.AuditHead).CheckSample(); err == nil {
		t.Error("a type that is not the namespace's shape passed its sample check")
	}
}
