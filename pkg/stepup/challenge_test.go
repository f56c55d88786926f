package stepup_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/pkg/stepup"
)

func TestChallengeRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    stepup.Challenge
	}{
		{"ok/rfc9470", stepup.Insufficient("step up", []string{"c1", "mfa"}, 5*time.Minute)},
		{"ok/rfc9470-max-age-zero", stepup.Challenge{Error: stepup.ErrInsufficientUserAuthentication, HasMaxAge: true}},
		{"ok/entra", stepup.ClaimsChallenge("needs c2", "https://id.example/oauth2/authorize", []string{"c2"})},
		{"ok/entra-two-contexts", stepup.ClaimsChallenge("", "", []string{"c2", "c3"})},
		{"ok/quoted-string-escapes", stepup.Challenge{Realm: `a "quoted" \ realm`, Description: `back\slash, "comma", =equals=`}},
		{"ok/scope", stepup.Challenge{Error: stepup.ErrInsufficientScope, Scope: []string{"read", "write"}}},
		{"ok/utf8", stepup.Challenge{Realm: "Données", Description: "accès refusé"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := stepup.ParseChallenge(tt.c.String())
			if err != nil {
				t.Fatalf("ParseChallenge(%s): %v", tt.c.String(), err)
			}
			if !equalChallenges(got, tt.c) {
				t.Fatalf("round trip of %s:\n got %#v\nwant %#v", tt.c.String(), got, tt.c)
			}
		})
	}
}

// equalChallenges compares challenges, treating nil and empty lists alike.
func equalChallenges(a, b stepup.Challenge) bool {
	norm := func(c stepup.Challenge) stepup.Challenge {
		if len(c.ACRValues) == 0 {
			c.ACRValues = nil
		}
		if len(c.Scope) == 0 {
			c.Scope = nil
		}
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func TestParseChallenge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string
		want   stepup.Challenge
		err    string // fragment of the error; "" for success
	}{
		{"ok/token-values", `Bearer error=insufficient_user_authentication, max_age=300`,
			stepup.Challenge{Error: stepup.ErrInsufficientUserAuthentication, MaxAge: 5 * time.Minute, HasMaxAge: true}, ""},
		{"ok/escapes", `Bearer error_description="say \"hi\" \\ \o/"`,
			stepup.Challenge{Description: `say "hi" \ o/`}, ""},
		{"ok/case-insensitive", `bEaReR ERROR="invalid_token"`, stepup.Challenge{Error: "invalid_token"}, ""},
		{"ok/basic-then-bearer", `Basic realm="x", Bearer error="invalid_token", realm="api"`,
			stepup.Challenge{Realm: "api", Error: "invalid_token"}, ""},
		{"ok/bearer-then-other", `Bearer realm="api", DPoP algs="ES256", error="nope"`, stepup.Challenge{Realm: "api"}, ""},
		{"ok/token68-before-bearer", `Negotiate YII+/a==, Bearer acr_values="c1"`, stepup.Challenge{ACRValues: []string{"c1"}}, ""},
		{"ok/bare-bearer", `Bearer`, stepup.Challenge{}, ""},
		{"ok/spaces-and-commas", " ,Bearer  ,, realm = \"a\" ,\tacr_values=\"c1  c2\" ,", stepup.Challenge{Realm: "a", ACRValues: []string{"c1", "c2"}}, ""},
		{"ok/claims-base64url", `Bearer claims=eyJhIjoxfQ`, stepup.Challenge{Claims: `{"a":1}`}, ""},
		{"fail/empty", ``, stepup.Challenge{}, "no Bearer"},
		{"fail/basic-only", `Basic realm="x"`, stepup.Challenge{}, "no Bearer"},
		{"fail/unterminated", `Bearer realm="x`, stepup.Challenge{}, "unterminated"},
		{"fail/ends-after-equals", `Bearer error="x", realm=`, stepup.Challenge{}, "ends after"},
		{"fail/repeated-param", `Bearer error="a", error="b"`, stepup.Challenge{}, "repeats"},
		{"fail/max-age-not-a-number", `Bearer max_age="soon"`, stepup.Challenge{}, "max_age"},
		{"fail/max-age-negative", `Bearer max_age=-1`, stepup.Challenge{}, "max_age"},
		{"fail/claims-not-base64", `Bearer claims="%%%"`, stepup.Challenge{}, "not base64"},
		{"fail/claims-not-json", `Bearer claims="bm90IGpzb24="`, stepup.Challenge{}, "not JSON"},
		{"fail/garbage", `"Bearer"`, stepup.Challenge{}, "malformed"},
		{"fail/too-long", "Bearer realm=\"" + strings.Repeat("a", 9000) + "\"", stepup.Challenge{}, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := stepup.ParseChallenge(tt.header)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("ParseChallenge(%q): %v", tt.header, err)
			case tt.err == "" && !equalChallenges(got, tt.want):
				t.Fatalf("ParseChallenge(%q)\n got %#v\nwant %#v", tt.header, got, tt.want)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("ParseChallenge(%q) error = %v, want one mentioning %q", tt.header, err, tt.err)
			}
		})
	}
}

// FuzzParseChallenge: the parser sees headers from any server a client
// talks to. It must never panic, and what it returns must survive being
// written out and read again unchanged (so a client cannot be made to
// act on something other than what it parsed).
func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`Bearer error="insufficient_user_authentication", acr_values="c1", max_age=0`,
		stepup.ClaimsChallenge("d", "https://x/authorize", []string{"c1"}).String(),
		`Basic realm="x", Bearer realm="a\"b"`,
		`Negotiate abc==, Bearer scope="read write"`,
		`Bearer claims=eyJhIjoxfQ`,
		`Bearer realm="x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		c, err := stepup.ParseChallenge(header)
		if err != nil {
			return
		}
		out := c.String()
		if len(out) > 8<<10 {
			return // base64 padding can push a header at the limit over it
		}
		again, err := stepup.ParseChallenge(out)
		if err != nil {
			t.Fatalf("%q parsed, but its re-serialisation %q does not: %v", header, out, err)
		}
		if !equalChallenges(c, again) {
			t.Fatalf("%q → %#v\nre-serialised %q → %#v", header, c, out, again)
		}
	})
}
