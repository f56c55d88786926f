package strength

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func events(t *testing.T, spec string) []Event {
	t.Helper()
	ev, err := ParseEvents(spec, now)
	if err != nil {
		t.Fatalf("ParseEvents(%q): %v", spec, err)
	}
	return ev
}

func mustSet(t *testing.T, defs ...Def) *Set {
	t.Helper()
	s, err := NewSet(defs...)
	if err != nil {
		t.Fatalf("NewSet: %v", err)
	}
	return s
}

func TestSatisfied(t *testing.T) {
	t.Parallel()
	set := mustSet(t, Def{Name: "totp-or-key", Combinations: []string{"password+totp", "webauthn"}})
	tests := []struct {
		name     string
		strength string
		events   string
		maxAge   time.Duration
		want     bool
	}{
		{"ok/mfa-password-totp", MFA, "pwd@-1h,totp@-1h", 0, true},
		{"ok/mfa-password-push", MFA, "pwd@-1h,push@-1h", 0, true},
		{"ok/mfa-password-sms", MFA, "pwd@-1h,sms@-1h", 0, true},
		{"ok/mfa-password-email", MFA, "pwd@-1h,email@-1h", 0, true},
		{"ok/mfa-password-recovery", MFA, "pwd@-1h,recovery-code@-1h", 0, true},
		{"ok/mfa-password-key-no-uv", MFA, "pwd,webauthn", 0, true},
		{"ok/mfa-passkey-alone", MFA, "webauthn:uv@-1m", 0, true},
		{"ok/mfa-phone-sign-in", MFA, "push:uv@-1m", 0, true},
		{"fail/mfa-password-only", MFA, "pwd@-1m", 0, false},
		{"fail/mfa-totp-only", MFA, "totp@-1m", 0, false},
		{"fail/mfa-key-without-uv", MFA, "webauthn@-1m", 0, false},
		{"fail/mfa-push-without-uv", MFA, "push@-1m", 0, false},
		{"fail/mfa-no-events", MFA, "", 0, false},
		{"ok/passwordless-passkey", Passwordless, "webauthn:uv", 0, true},
		{"ok/passwordless-phone", Passwordless, "push:uv", 0, true},
		{"fail/passwordless-password-totp", Passwordless, "pwd,totp", 0, false},
		{"ok/phr-passkey", PhishingResistant, "webauthn:uv", 0, true},
		{"ok/phr-password-key", PhishingResistant, "pwd,webauthn", 0, true},
		{"fail/phr-phone", PhishingResistant, "push:uv", 0, false},
		{"fail/phr-password-totp", PhishingResistant, "pwd,totp", 0, false},
		{"ok/single-factor-password", SingleFactor, "pwd@-1m", 0, true},
		{"fail/single-factor-totp", SingleFactor, "totp@-1m", 0, false},
		{"ok/custom-combination", "totp-or-key", "pwd,totp", 0, true},
		{"ok/custom-key", "totp-or-key", "webauthn", 0, true},
		{"fail/custom-sms", "totp-or-key", "pwd,sms", 0, false},
		{"fail/unknown-strength", "nope", "pwd,totp", 0, false},
		{"ok/fresh-within-window", MFA, "pwd@-9m,totp@-2m", 10 * time.Minute, true},
		{"ok/exactly-at-window", MFA, "pwd@-10m,totp@-2m", 10 * time.Minute, true},
		{"fail/one-event-stale", MFA, "pwd@-11m,totp@-2m", 10 * time.Minute, false},
		{"ok/stale-and-fresh-same-method", MFA, "pwd@-3h,pwd@-1m,totp@-2m", 10 * time.Minute, true},
		{"ok/future-event-counts", MFA, "pwd@+30s,totp@+30s", time.Minute, true},
		{"ok/no-window-old-events", MFA, "pwd@-30d,totp@-30d", 0, true},
		{"ok/other-fresh-path", MFA, "pwd@-3h,totp@-3h,webauthn:uv@-1m", 10 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := set.Satisfied(tt.strength, events(t, tt.events), now, tt.maxAge); got != tt.want {
				t.Errorf("Satisfied(%s, %q, %v) = %v, want %v", tt.strength, tt.events, tt.maxAge, got, tt.want)
			}
		})
	}
}

func optionStrings(opts []Combination) []string {
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o.String()
	}
	return out
}

func TestMissing(t *testing.T) {
	t.Parallel()
	set := mustSet(t)
	tests := []struct {
		name     string
		strength string
		events   string
		maxAge   time.Duration
		want     []string
	}{
		// With a fresh password any second factor completes MFA; the UV
		// variants are dropped because a plain key or push already does it.
		{"ok/fresh-password-needs-second-factor", MFA, "pwd@-1m", time.Hour,
			[]string{"webauthn", "push", "totp", "otp-sms", "otp-email", "recovery-code"}},
		{"ok/stale-password-needs-everything", MFA, "pwd@-2h", time.Hour,
			[]string{"webauthn:uv", "push:uv", "password+webauthn", "password+push", "password+totp", "password+otp-sms", "password+otp-email", "password+recovery-code"}},
		{"ok/satisfied-needs-nothing", MFA, "pwd,totp", 0, nil},
		{"ok/phr-after-password", PhishingResistant, "pwd,totp", 0, []string{"webauthn"}},
		{"ok/phr-from-scratch", PhishingResistant, "", 0, []string{"webauthn:uv", "password+webauthn"}},
		{"ok/key-without-uv-needs-password", PhishingResistant, "webauthn@-1m", 0, []string{"webauthn:uv", "password"}},
		{"ok/unknown-strength", "nope", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := optionStrings(set.Missing(tt.strength, events(t, tt.events), now, tt.maxAge))
			if len(got) != len(tt.want) || (len(got) > 0 && !slices.Equal(got, tt.want)) {
				t.Errorf("Missing = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestImplies(t *testing.T) {
	t.Parallel()
	set := mustSet(t, Def{Name: "totp-only", Combinations: []string{"password+totp"}})
	tests := []struct {
		a, b string
		want bool
	}{
		{PhishingResistant, MFA, true},
		{Passwordless, MFA, true},
		{MFA, SingleFactor, true},
		{PhishingResistant, SingleFactor, true},
		{MFA, PhishingResistant, false},
		{MFA, Passwordless, false},
		{Passwordless, PhishingResistant, false},
		{"totp-only", MFA, true},
		{MFA, "totp-only", false},
		{MFA, MFA, true},
		{"nope", MFA, false},
	}
	for _, tt := range tests {
		name := "ok/"
		if !tt.want {
			name = "fail/"
		}
		t.Run(name+tt.a+"-implies-"+tt.b, func(t *testing.T) {
			t.Parallel()
			if got := set.Implies(tt.a, tt.b); got != tt.want {
				t.Errorf("Implies(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestNewSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		defs    []Def
		wantErr []string
	}{
		{"ok/custom", []Def{{Name: "keys", Combinations: []string{"webauthn", "password+totp"}}}, nil},
		{"fail/builtin-name", []Def{{Name: "mfa", Combinations: []string{"webauthn"}}}, []string{`"mfa" is built in`}},
		{"fail/bad-name", []Def{{Name: "Keys!", Combinations: []string{"webauthn"}}}, []string{"lower-case"}},
		{"fail/duplicate", []Def{{Name: "k", Combinations: []string{"webauthn"}}, {Name: "k", Combinations: []string{"totp"}}}, []string{"defined twice"}},
		{"fail/empty", []Def{{Name: "k"}}, []string{"no combinations"}},
		{"fail/unknown-method", []Def{{Name: "k", Combinations: []string{"password+totpp"}}}, []string{`unknown method "totpp"`}},
		{"fail/repeated-method", []Def{{Name: "k", Combinations: []string{"totp+totp"}}}, []string{"appears twice"}},
		{"fail/bad-qualifier", []Def{{Name: "k", Combinations: []string{"webauthn:xx"}}}, []string{`unknown qualifier "xx"`}},
		{"fail/every-mistake-reported", []Def{{Name: "a"}, {Name: "mfa", Combinations: []string{"x"}}}, []string{"no combinations", "built in"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewSet(tt.defs...)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("NewSet: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewSet succeeded, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseCombination(t *testing.T) {
	t.Parallel()
	c, err := ParseCombination(" password + webauthn:uv:phr ")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.String(); got != "password+webauthn:uv:phr" {
		t.Errorf("round trip = %q", got)
	}
	for _, bad := range []string{"", "password+", ":uv", "webauthn:"} {
		if _, err := ParseCombination(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseCombination(%q) error = %v, want ErrSyntax", bad, err)
		}
	}
}

func TestSatisfiedNames(t *testing.T) {
	t.Parallel()
	set := mustSet(t)
	got := set.SatisfiedNames(events(t, "pwd@-20m,webauthn@-1m"), now, 10*time.Minute)
	// The password is stale, so only the key counts: that is a sign-in but
	// not MFA or anything phishing-resistant without user verification.
	if want := []string{SingleFactor}; !slices.Equal(got, want) {
		t.Errorf("SatisfiedNames = %q, want %q", got, want)
	}
	got = set.SatisfiedNames(events(t, "pwd@-20m,webauthn@-1m"), now, 0)
	if want := []string{MFA, PhishingResistant, SingleFactor}; !slices.Equal(got, want) {
		t.Errorf("SatisfiedNames without window = %q, want %q", got, want)
	}
}

func TestParseEvents(t *testing.T) {
	t.Parallel()
	ev := events(t, "pwd@-5m, webauthn:uv@2025-03-01T11:00:00Z,totp,push:uv@+1m,sms@-1d")
	want := []Event{
		{Method: Password, Time: now.Add(-5 * time.Minute)},
		{Method: WebAuthn, Time: now.Add(-time.Hour), UserVerified: true, PhishingResistant: true},
		{Method: TOTP, Time: now},
		{Method: Push, Time: now.Add(time.Minute), UserVerified: true},
		{Method: OTPSMS, Time: now.Add(-24 * time.Hour)},
	}
	if len(ev) != len(want) {
		t.Fatalf("got %d events, want %d", len(ev), len(want))
	}
	for i := range want {
		if ev[i].Method != want[i].Method || !ev[i].Time.Equal(want[i].Time) ||
			ev[i].UserVerified != want[i].UserVerified || ev[i].PhishingResistant != want[i].PhishingResistant {
			t.Errorf("event %d = %+v, want %+v", i, ev[i], want[i])
		}
	}
	for _, bad := range []string{"pwd@-5x", "fido@-1m", "pwd@yesterday", "pwd@-1.5d"} {
		if _, err := ParseEvents(bad, now); err == nil {
			t.Errorf("ParseEvents(%q) succeeded, want an error", bad)
		}
	}
}

func TestUserVerifiedAMR(t *testing.T) {
	t.Parallel()
	if !UserVerifiedAMR([]string{"hwk", "user"}) || !UserVerifiedAMR([]string{"hwk", "pin"}) {
		t.Error("hwk with user or pin should count as user verified")
	}
	if UserVerifiedAMR([]string{"hwk"}) || UserVerifiedAMR(nil) {
		t.Error("hwk alone should not count as user verified")
	}
}

func BenchmarkSatisfied(b *testing.B) {
	set, _ := NewSet()
	ev, _ := ParseEvents("pwd@-5m,totp@-2m", now)
	b.ReportAllocs()
	for b.Loop() {
		if !set.Satisfied(MFA, ev, now, time.Hour) {
			b.Fatal("not satisfied")
		}
	}
}

func TestAAGUIDAllowList(t *testing.T) {
	const yubikey, synced = "cb69481e-8ff7-4039-93ec-0a2729a154a8", "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
	set := mustSet(t, Def{Name: "issued-keys", Combinations: []string{"webauthn:uv"}, AAGUIDs: []string{strings.ToUpper(yubikey)}})
	now := time.Now()
	key := []Event{{Method: WebAuthn, Time: now, UserVerified: true, PhishingResistant: true, AAGUID: yubikey}}
	phone := []Event{{Method: WebAuthn, Time: now, UserVerified: true, PhishingResistant: true, AAGUID: synced}}
	if !set.Satisfied("issued-keys", key, now, 0) {
		t.Error("ok/listed-model: an issued key does not meet the strength")
	}
	if set.Satisfied("issued-keys", phone, now, 0) {
		t.Error("fail/other-model: a synced passkey met a strength limited to issued keys")
	}
	if len(set.Missing("issued-keys", phone, now, 0)) == 0 {
		t.Error("fail/other-model: Missing says nothing is missing")
	}
	if !set.Satisfied(PhishingResistant, phone, now, 0) {
		t.Error("the built-in phishing-resistant strength must not be limited")
	}
	st, _ := set.Lookup("issued-keys")
	pr, _ := set.Lookup(PhishingResistant)
	if pr.Implies(st) {
		t.Error("an unrestricted strength implies one limited to some models")
	}
	if _, err := NewSet(Def{Name: "bad", Combinations: []string{"webauthn"}, AAGUIDs: []string{"not-a-uuid"}}); err == nil {
		t.Error("a malformed AAGUID was accepted")
	}
}
