package webauthn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

const (
	rpID   = "login.example.com"
	origin = "https://login.example.com"
)

// Authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

var b64 = base64.RawURLEncoding

// softKey is a software authenticator: one ES256 credential that builds
// registration and assertion responses as a browser would hand them over.
type softKey struct {
	key        *ecdsa.PrivateKey
	id         []byte
	aaguid     [16]byte
	userHandle []byte
	counter    uint32
	uv         bool

	// What the next response claims; tests change them to attack.
	origin string
	rpID   string
}

func newSoftKey(t testing.TB) *softKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &softKey{key: key, id: make([]byte, 32), uv: true, origin: origin, rpID: rpID}
	_, _ = rand.Read(k.id)
	copy(k.aaguid[:], []byte("stepgate-testkey"))
	return k
}

func (k *softKey) flags(extra byte) byte {
	f := flagUP | flagBE | flagBS | extra
	if k.uv {
		f |= flagUV
	}
	return f
}

// authData is rpIdHash ‖ flags ‖ signCount, then attested credential data
// when att is set.
func (k *softKey) authData(t testing.TB, att bool) []byte {
	t.Helper()
	h := sha256.Sum256([]byte(k.rpID))
	out := append([]byte{}, h[:]...)
	var extra byte
	if att {
		extra = flagAT
	}
	out = append(out, k.flags(extra))
	out = binary.BigEndian.AppendUint32(out, k.counter)
	if !att {
		return out
	}
	out = append(out, k.aaguid[:]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(k.id)))
	out = append(out, k.id...)
	pub := webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256),
		XCoord:        k.key.X.FillBytes(make([]byte, 32)),
		YCoord:        k.key.Y.FillBytes(make([]byte, 32)),
	}
	cose, err := webauthncbor.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, cose...)
}

func (k *softKey) clientData(t testing.TB, typ, challenge string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register answers creation options with a "none" attestation.
func (k *softKey) register(t testing.TB, show map[string]any) []byte {
	t.Helper()
	var opts struct {
		Challenge string `json:"challenge"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(show["options"].(json.RawMessage), &opts); err != nil {
		t.Fatal(err)
	}
	k.userHandle, _ = b64.DecodeString(opts.User.ID)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(t, true)})
	if err != nil {
		t.Fatal(err)
	}
	return k.marshal(t, map[string]any{
		"clientDataJSON":    b64.EncodeToString(k.clientData(t, "webauthn.create", opts.Challenge)),
		"attestationObject": b64.EncodeToString(att),
		"transports":        []string{"internal", "hybrid"},
	})
}

// assert answers request options, signing authData ‖ SHA-256(clientData).
func (k *softKey) assert(t testing.TB, show map[string]any) []byte {
	t.Helper()
	var opts struct {
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(show["options"].(json.RawMessage), &opts); err != nil {
		t.Fatal(err)
	}
	k.counter++
	ad := k.authData(t, false)
	cd := k.clientData(t, "webauthn.get", opts.Challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(slices.Clone(ad), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return k.marshal(t, map[string]any{
		"clientDataJSON":    b64.EncodeToString(cd),
		"authenticatorData": b64.EncodeToString(ad),
		"signature":         b64.EncodeToString(sig),
		"userHandle":        b64.EncodeToString(k.userHandle),
	})
}

func (k *softKey) marshal(t testing.TB, response map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{}, "response": response,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fixture struct {
	m          *Method
	st         store.Store
	alice, bob store.User
}

func setup(t testing.TB, cfg Config) fixture {
	t.Helper()
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	alice, err := st.CreateUser(ctx, store.User{ID: "u-alice", Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := st.CreateUser(ctx, store.User{ID: "u-bob", Username: "bob", DisplayName: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RPID == "" {
		cfg = Config{RPID: rpID, RPName: "Stepgate", Origins: []string{origin}, AllowedAAGUIDs: cfg.AllowedAAGUIDs}
	}
	m, err := New(cfg, st, st, now)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{m: m, st: st, alice: alice, bob: bob}
}

// enroll registers k for u and returns the stored credential.
func (f fixture) enroll(t testing.TB, u store.User, k *softKey, name string) store.Credential {
	t.Helper()
	ctx := context.Background()
	ch, err := f.m.BeginEnroll(ctx, u, name)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Show["kind"] != KindRegister {
		t.Fatalf("kind = %v", ch.Show["kind"])
	}
	e, err := f.m.FinishEnroll(ctx, u, ch.State, authn.Response{Data: k.register(t, ch.Show)})
	if err != nil {
		t.Fatalf("FinishEnroll: %v", err)
	}
	return e.Credential
}

// verify runs a step-up for u, with answer building the response.
func (f fixture) verify(t testing.TB, u store.User, answer func(show map[string]any) []byte) (authn.Proof, error) {
	t.Helper()
	ctx := context.Background()
	creds, err := f.st.ListCredentials(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := f.m.BeginVerify(ctx, u, creds)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Show["kind"] != KindLogin {
		t.Fatalf("kind = %v", ch.Show["kind"])
	}
	return f.m.Verify(ctx, u, creds, ch.State, authn.Response{Data: answer(ch.Show)})
}

func (f fixture) credential(t testing.TB, id string) store.Credential {
	t.Helper()
	c, err := f.st.GetCredential(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRegisterAndVerify(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	k := newSoftKey(t)
	c := f.enroll(t, f.alice, k, "  ")

	// ok/register: the record holds what later checks need.
	if c.Type != Name || c.Name != "Passkey" || c.UserID != f.alice.ID || c.ID != b64.EncodeToString(k.id) {
		t.Fatalf("stored %+v", c)
	}
	if got, want := AAGUID(c), "73746570-6761-7465-2d74-6573746b6579"; got != want {
		t.Errorf("AAGUID = %q, want %q", got, want)
	}
	wc, err := decode(c)
	if err != nil {
		t.Fatal(err)
	}
	if !wc.Flags.UserVerified || !wc.Flags.BackupEligible || !wc.Flags.BackupState || len(wc.PublicKey) == 0 ||
		!slices.Equal([]string{"internal", "hybrid"}, []string{string(wc.Transport[0]), string(wc.Transport[1])}) {
		t.Errorf("credential %+v", wc)
	}

	// ok/verify: a user-verified passkey proves hwk and user.
	p, err := f.verify(t, f.alice, func(show map[string]any) []byte { return k.assert(t, show) })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := authn.Proof{Method: Name, AMR: []string{"hwk", "user"}, PhishingResistant: true, CredentialID: c.ID}
	if !slices.Equal(p.AMR, want.AMR) || p.Method != want.Method || !p.PhishingResistant || p.CredentialID != want.CredentialID {
		t.Errorf("proof = %+v, want %+v", p, want)
	}
	after := f.credential(t, c.ID)
	if wc, _ := decode(after); wc.Authenticator.SignCount != 1 || after.LastUsedAt.IsZero() {
		t.Errorf("after use: counter %d, last used %v", wc.Authenticator.SignCount, after.LastUsedAt)
	}

	// ok/security-key-without-uv: a second factor, not user-verified.
	k.uv = false
	p, err = f.verify(t, f.alice, func(show map[string]any) []byte { return k.assert(t, show) })
	if err != nil || !slices.Equal(p.AMR, []string{"hwk"}) {
		t.Errorf("without UV: %+v, %v", p, err)
	}

	// ok/second-enroll-excludes-the-first: the browser is told not to
	// register the same authenticator twice.
	ch, err := f.m.BeginEnroll(context.Background(), f.alice, "")
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		Exclude []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
		Selection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
	}
	if err := json.Unmarshal(ch.Show["options"].(json.RawMessage), &opts); err != nil {
		t.Fatal(err)
	}
	if len(opts.Exclude) != 1 || opts.Exclude[0].ID != c.ID || opts.Selection.ResidentKey != "preferred" || opts.Selection.UserVerification != "preferred" {
		t.Errorf("creation options %+v", opts)
	}
}

func TestVerifyFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// attack changes the key or the answer; it returns the response
		// to send.
		attack  func(t *testing.T, f fixture, k *softKey, show map[string]any) []byte
		wantErr error
	}{
		{
			// A look-alike site relays the ceremony: the browser writes
			// the look-alike's origin into clientDataJSON.
			name: "fail/wrong-origin",
			attack: func(t *testing.T, _ fixture, k *softKey, show map[string]any) []byte {
				k.origin = "https://login.example.com.evil.test"
				return k.assert(t, show)
			},
			wantErr: authn.ErrInvalid,
		},
		{
			// The authenticator signed for another relying party.
			name: "fail/other-RP-ID",
			attack: func(t *testing.T, _ fixture, k *softKey, show map[string]any) []byte {
				k.rpID = "evil.test"
				return k.assert(t, show)
			},
			wantErr: authn.ErrInvalid,
		},
		{
			// A clone of the key that signed less often than the
			// original reports a counter the server has already seen.
			name: "fail/counter-going-backwards",
			attack: func(t *testing.T, _ fixture, k *softKey, show map[string]any) []byte {
				k.counter = 2 // assert makes it 3; the original reached 5
				return k.assert(t, show)
			},
			wantErr: ErrCloned,
		},
		{
			name: "fail/counter-repeated",
			attack: func(t *testing.T, _ fixture, k *softKey, show map[string]any) []byte {
				k.counter = 4
				return k.assert(t, show)
			},
			wantErr: ErrCloned,
		},
		{
			name: "fail/bad-signature",
			attack: func(t *testing.T, _ fixture, k *softKey, show map[string]any) []byte {
				other := newSoftKey(t)
				k.key = other.key
				return k.assert(t, show)
			},
			wantErr: authn.ErrInvalid,
		},
		{
			// The answer signs the challenge of another ceremony: a
			// response captured from one step-up cannot complete another.
			name: "fail/challenge-mismatch",
			attack: func(t *testing.T, f fixture, k *softKey, _ map[string]any) []byte {
				creds, _ := f.st.ListCredentials(context.Background(), f.alice.ID)
				other, err := f.m.BeginVerify(context.Background(), f.alice, creds)
				if err != nil {
					t.Fatal(err)
				}
				return k.assert(t, other.Show)
			},
			wantErr: authn.ErrInvalid,
		},
		{
			name: "fail/not-json",
			attack: func(*testing.T, fixture, *softKey, map[string]any) []byte {
				return []byte("{")
			},
			wantErr: authn.ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, Config{})
			k := newSoftKey(t)
			c := f.enroll(t, f.alice, k, "key")
			for range 5 {
				if _, err := f.verify(t, f.alice, func(show map[string]any) []byte { return k.assert(t, show) }); err != nil {
					t.Fatal(err)
				}
			}
			before := f.credential(t, c.ID)
			_, err := f.verify(t, f.alice, func(show map[string]any) []byte { return tt.attack(t, f, k, show) })
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, authn.ErrInvalid) {
				t.Fatalf("Verify = %v, want %v (and authn.ErrInvalid)", err, tt.wantErr)
			}
			t.Logf("refused: %v", err)
			// Nothing of a refused answer is recorded: the counter
			// stays where the genuine key left it.
			if after := f.credential(t, c.ID); after.Version != before.Version {
				t.Errorf("a refused answer updated the credential: version %d → %d", before.Version, after.Version)
			}
		})
	}
}

// TestCeremonyStateOfAnotherUser: a ceremony started for one account
// cannot be finished for another, even with a valid signature.
func TestCeremonyStateOfAnotherUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, Config{})
	ka, kb := newSoftKey(t), newSoftKey(t)
	f.enroll(t, f.alice, ka, "a")
	f.enroll(t, f.bob, kb, "b")
	bobCreds, _ := f.st.ListCredentials(ctx, f.bob.ID)
	aliceCreds, _ := f.st.ListCredentials(ctx, f.alice.ID)
	bobCh, err := f.m.BeginVerify(ctx, f.bob, bobCreds)
	if err != nil {
		t.Fatal(err)
	}
	aliceCh, err := f.m.BeginVerify(ctx, f.alice, aliceCreds)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("fail/bobs-state-alices-answer", func(t *testing.T) {
		_, err := f.m.Verify(ctx, f.alice, aliceCreds, bobCh.State, authn.Response{Data: ka.assert(t, bobCh.Show)})
		if !errors.Is(err, authn.ErrInvalid) {
			t.Fatalf("Verify = %v, want ErrInvalid", err)
		}
	})
	t.Run("fail/alices-state-bobs-answer", func(t *testing.T) {
		_, err := f.m.Verify(ctx, f.alice, aliceCreds, aliceCh.State, authn.Response{Data: kb.assert(t, aliceCh.Show)})
		if !errors.Is(err, authn.ErrInvalid) {
			t.Fatalf("Verify = %v, want ErrInvalid", err)
		}
	})
	t.Run("fail/enroll-state-of-another-user", func(t *testing.T) {
		ch, err := f.m.BeginEnroll(ctx, f.bob, "")
		if err != nil {
			t.Fatal(err)
		}
		k := newSoftKey(t)
		if _, err := f.m.FinishEnroll(ctx, f.alice, ch.State, authn.Response{Data: k.register(t, ch.Show)}); !errors.Is(err, authn.ErrInvalid) {
			t.Fatalf("FinishEnroll = %v, want ErrInvalid", err)
		}
	})
}

func TestDiscoverableLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, Config{})
	ka, kb := newSoftKey(t), newSoftKey(t)
	f.enroll(t, f.alice, ka, "a")
	cb := f.enroll(t, f.bob, kb, "b")

	login := func(t *testing.T, answer func(show map[string]any) []byte) (string, authn.Proof, error) {
		t.Helper()
		ch, err := f.m.BeginLogin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var opts struct {
			Allow []any  `json:"allowCredentials"`
			UV    string `json:"userVerification"`
		}
		if err := json.Unmarshal(ch.Show["options"].(json.RawMessage), &opts); err != nil {
			t.Fatal(err)
		}
		if ch.Show["kind"] != KindLogin || len(opts.Allow) != 0 || opts.UV != "required" {
			t.Fatalf("passwordless options %v", ch.Show)
		}
		return f.m.FinishLogin(ctx, ch.State, answer(ch.Show), func(context.Context) error { return nil })
	}

	t.Run("ok/resolves-the-right-user", func(t *testing.T) {
		id, p, err := login(t, func(show map[string]any) []byte { return kb.assert(t, show) })
		if err != nil {
			t.Fatal(err)
		}
		if id != f.bob.ID || p.CredentialID != cb.ID || !slices.Contains(p.AMR, "user") || !p.PhishingResistant {
			t.Errorf("FinishLogin = %q, %+v; want bob", id, p)
		}
	})
	t.Run("fail/own-key-with-victims-user-handle", func(t *testing.T) {
		mallory := newSoftKey(t)
		mallory.id = ka.id // even a credential id that exists, with another key
		mallory.userHandle = []byte(f.bob.ID)
		_, _, err := login(t, func(show map[string]any) []byte { return mallory.assert(t, show) })
		if !errors.Is(err, authn.ErrInvalid) {
			t.Fatalf("FinishLogin = %v, want ErrInvalid", err)
		}
		t.Logf("refused: %v", err)
	})
	t.Run("fail/unknown-user-handle", func(t *testing.T) {
		k := *ka
		k.userHandle = []byte("nobody")
		_, _, err := login(t, func(show map[string]any) []byte { return k.assert(t, show) })
		if !errors.Is(err, authn.ErrInvalid) {
			t.Fatalf("FinishLogin = %v, want ErrInvalid", err)
		}
	})
	t.Run("fail/without-user-verification", func(t *testing.T) {
		ka.uv = false
		defer func() { ka.uv = true }()
		_, _, err := login(t, func(show map[string]any) []byte { return ka.assert(t, show) })
		if !errors.Is(err, authn.ErrInvalid) {
			t.Fatalf("FinishLogin = %v, want ErrInvalid: a passkey alone must verify the user", err)
		}
	})
	t.Run("fail/cloned", func(t *testing.T) {
		k := *kb
		k.counter = 0
		_, _, err := login(t, func(show map[string]any) []byte { return k.assert(t, show) })
		if !errors.Is(err, ErrCloned) {
			t.Fatalf("FinishLogin = %v, want ErrCloned", err)
		}
	})
	t.Run("fail/disabled-account", func(t *testing.T) {
		if _, err := f.st.UpdateUser(ctx, f.bob.ID, func(u store.User) (store.User, error) { u.Disabled = true; return u, nil }); err != nil {
			t.Fatal(err)
		}
		_, _, err := login(t, func(show map[string]any) []byte { return kb.assert(t, show) })
		if !errors.Is(err, authn.ErrDisabledAccount) {
			t.Fatalf("FinishLogin = %v, want ErrDisabledAccount", err)
		}
	})
}

// TestSealedLoginSingleUse replays a passwordless sign-in whose state
// lives in the page: the same assertion, answered to the same sealed
// challenge, must sign in once. Only a verified answer writes, and a
// replay of a counting key is refused as a replay without touching the
// credential.
func TestSealedLoginSingleUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, Config{})
	k := newSoftKey(t)
	cred := f.enroll(t, f.alice, k, "a")
	box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	lc := authn.NewLoginChallenges(box, f.st, f.m.now)
	spent := func(t *testing.T) int {
		t.Helper()
		n, _, err := f.st.KVUsage(ctx, "authn/")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	begin := func(t *testing.T) (string, map[string]any) {
		t.Helper()
		ch, err := f.m.BeginLogin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		token, err := lc.Seal(ch.State, "browser-1")
		if err != nil {
			t.Fatal(err)
		}
		return token, ch.Show
	}
	finish := func(t *testing.T, token string, data []byte) (string, error) {
		t.Helper()
		c, err := lc.Open(token, "browser-1")
		if err != nil {
			return "", err
		}
		id, _, err := f.m.FinishLogin(ctx, c.State, data, func(ctx context.Context) error { return lc.Spend(ctx, c) })
		return id, err
	}

	token, show := begin(t)
	wrong := newSoftKey(t)
	if _, err := finish(t, token, wrong.assert(t, show)); !errors.Is(err, authn.ErrInvalid) {
		t.Fatalf("fail/unknown-key: %v, want ErrInvalid", err)
	}
	if n := spent(t); n != 0 {
		t.Fatalf("fail/unknown-key: a refused answer stored %d records", n)
	}
	data := k.assert(t, show)
	if id, err := finish(t, token, data); err != nil || id != f.alice.ID {
		t.Fatalf("ok/first-answer = %q, %v", id, err)
	}
	before, err := f.st.GetCredential(ctx, cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := finish(t, token, data); !errors.Is(err, authn.ErrNoCeremony) {
			t.Fatalf("attack/replay-%d = %v, want ErrNoCeremony", i, err)
		}
	}
	after, err := f.st.GetCredential(ctx, cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(after.Data) != string(before.Data) {
		t.Fatal("attack/replay: a replayed assertion changed the stored credential")
	}
	if n := spent(t); n != 1 {
		t.Fatalf("one sign-in stored %d spent-challenge records, want 1", n)
	}
	// A fresh challenge signs in again: spending is per challenge.
	token2, show2 := begin(t)
	if _, err := finish(t, token2, k.assert(t, show2)); err != nil {
		t.Fatalf("ok/second-sign-in: %v", err)
	}
}

func TestEnrollPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	register := func(t *testing.T, f fixture, u store.User, k *softKey) error {
		t.Helper()
		ch, err := f.m.BeginEnroll(ctx, u, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.m.FinishEnroll(ctx, u, ch.State, authn.Response{Data: k.register(t, ch.Show)})
		return err
	}
	listed := "73746570-6761-7465-2d74-6573746b6579" // newSoftKey's AAGUID
	tests := []struct {
		name    string
		allowed []string
		aaguid  [16]byte
		wantErr error
	}{
		{name: "ok/any-model", aaguid: [16]byte{1}},
		{name: "ok/listed-model", allowed: []string{"cb69481e-8ff7-4039-93ec-0a2729a154a8", listed}},
		{name: "fail/unlisted-model", allowed: []string{"cb69481e-8ff7-4039-93ec-0a2729a154a8"}, wantErr: ErrAuthenticatorNotAllowed},
		{name: "fail/hidden-model", allowed: []string{listed}, aaguid: [16]byte{}, wantErr: ErrAuthenticatorNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, Config{AllowedAAGUIDs: tt.allowed})
			k := newSoftKey(t)
			if tt.name != "ok/listed-model" {
				k.aaguid = tt.aaguid
			}
			err := register(t, f, f.alice, k)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FinishEnroll = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil && !errors.Is(err, authn.ErrNotAllowed) {
				t.Errorf("FinishEnroll = %v, want authn.ErrNotAllowed for the pages", err)
			}
		})
	}
	t.Run("fail/credential-id-of-another-account", func(t *testing.T) {
		t.Parallel()
		f := setup(t, Config{})
		k := newSoftKey(t)
		f.enroll(t, f.alice, k, "")
		theft := newSoftKey(t)
		theft.id = k.id
		if err := register(t, f, f.bob, theft); !errors.Is(err, ErrAlreadyRegistered) {
			t.Fatalf("FinishEnroll = %v, want ErrAlreadyRegistered", err)
		}
	})
	t.Run("fail/new-rejects-bad-config", func(t *testing.T) {
		t.Parallel()
		if _, err := New(Config{RPID: rpID, RPName: "x", Origins: []string{origin}, AllowedAAGUIDs: []string{"nope"}}, nil, nil, nil); err == nil {
			t.Error("a malformed AAGUID was accepted")
		}
		if _, err := New(Config{RPID: rpID, RPName: "x"}, nil, nil, nil); err == nil {
			t.Error("a relying party without origins was accepted")
		}
	})
}

func TestNotEnrolled(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	other := store.Credential{ID: "t", UserID: f.alice.ID, Type: "totp"}
	if _, err := f.m.BeginVerify(context.Background(), f.alice, []store.Credential{other}); !errors.Is(err, authn.ErrNotEnrolled) {
		t.Fatalf("BeginVerify = %v, want ErrNotEnrolled", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	f := setup(b, Config{})
	k := newSoftKey(b)
	f.enroll(b, f.alice, k, "")
	ctx := context.Background()
	creds, _ := f.st.ListCredentials(ctx, f.alice.ID)
	b.ReportAllocs()
	for b.Loop() {
		ch, err := f.m.BeginVerify(ctx, f.alice, creds)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.m.Verify(ctx, f.alice, creds, ch.State, authn.Response{Data: k.assert(b, ch.Show)}); err != nil {
			b.Fatal(err)
		}
	}
}
