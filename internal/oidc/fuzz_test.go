package oidc

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stepgate/stepgate/internal/config"
)

// FuzzParseClaims feeds the claims parameter, which any web page can set
// on an authorization request, to the parser.
func FuzzParseClaims(f *testing.F) {
	for _, s := range []string{
		``,
		`null`,
		`{}`,
		`{"id_token":{"acr":{"essential":true,"values":["c1","mfa"]}}}`,
		`{"access_token":{"acrs":{"essential":true,"value":"c2"},"xms_cc":{"values":["cp1"]}}}`,
		`{"id_token":{"acr":null,"email":null},"userinfo":{"name":null}}`,
		`{"id_token":{"acr":{"value":null,"values":[null,"c1"]}}}`,
		`{"id_token":{"acr":{"values":[2]}}}`,
		`{"id_token":{"acr":{"value":"\u0000c1"}}}`,
		`{"id_token":{"acr":{"value":"c1"}},"id_token":{"acr":{"value":"c2"}}}`,
		`{"id_token":{}}x`,
		`{"acess_token":{}}`,
		`{"id_token":{"acr":`,
		`[{"id_token":{}}]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := ParseClaims(s)
		if err != nil {
			if cr != nil {
				t.Fatalf("ParseClaims(%q) returned a request with the error %v", s, err)
			}
			return
		}
		if cr == nil {
			if s != "" {
				t.Fatalf("ParseClaims(%q) accepted it but returned nothing", s)
			}
			return
		}
		// What was accepted is stored in the flow as JSON.
		b, err := json.Marshal(cr)
		if err != nil || !json.Valid(b) {
			t.Fatalf("accepted %q re-marshals to %q (%v)", s, b, err)
		}
		var back ClaimsRequest
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("accepted %q: stored form %q does not load: %v", s, b, err)
		}
		// Every value demanded was really in the request: nothing
		// appears from a default, a null or a conversion.
		var doc any
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			t.Fatalf("accepted %q, which is not JSON: %v", s, err)
		}
		present := stringsIn(doc, nil)
		for _, v := range append(cr.requestedACRs(), cr.capabilities()...) {
			if !slices.Contains(present, v) {
				t.Fatalf("ParseClaims(%q) demands %q, which the input does not contain", s, v)
			}
		}
		// The flow stores the request and reads it back: the
		// requirements must survive.
		if got, want := back.requestedACRs(), cr.requestedACRs(); !slices.Equal(got, want) {
			t.Fatalf("acr values %q after storing, %q before", got, want)
		}
	})
}

// stringsIn appends every string value (not member name) in a decoded
// JSON document to out.
func stringsIn(v any, out []string) []string {
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, e := range v {
			out = stringsIn(e, out)
		}
	case map[string]any:
		for _, e := range v {
			out = stringsIn(e, out)
		}
	}
	return out
}

// FuzzRedirectURIMatch checks that a redirect URI matches only by exact
// bytes: any normalisation (case, encoding, dot segments, a trailing
// slash) is a way to steer a code to an address the client never
// registered.
func FuzzRedirectURIMatch(f *testing.F) {
	for _, s := range []string{
		"https://app.example/callback",
		"https://app.example/callback/",
		"https://APP.example/callback",
		"https://app.example/Callback",
		"https://app.example/%63allback",
		"https://app.example/callback/../evil",
		"https://app.example/callback?x=1",
		"https://app.example/callback#",
		"https://app.example@evil.example/callback",
		"https://evil.example\\@app.example/callback",
		"http://127.0.0.1:9/callback",
		"com.example.app:/oauth2redirect",
		"https://app.example/callback ",
		"",
	} {
		f.Add(s, "https://app.example/callback")
	}
	f.Fuzz(func(t *testing.T, candidate, registered string) {
		regs := []string{"https://app.example/callback", "http://127.0.0.1:9/callback", "com.example.app:/oauth2redirect"}
		// CheckRedirectURI sees operator and command-line input.
		if config.CheckRedirectURI(registered) == nil {
			regs = append(regs, registered)
		}
		_ = config.CheckRedirectURI(candidate)
		c := &Client{ID: "c", RedirectURIs: regs}
		want := slices.Contains(regs, candidate)
		if got := c.HasRedirectURI(candidate); got != want {
			t.Fatalf("HasRedirectURI(%q) = %t with %q registered; want %t (byte-for-byte only)", candidate, got, regs, want)
		}
		// Stated the other way round: a match is one of the registered
		// strings, byte for byte.
		if c.HasRedirectURI(candidate) && !slices.ContainsFunc(regs, func(r string) bool { return r == candidate && len(r) == len(candidate) }) {
			t.Fatalf("HasRedirectURI(%q) matched nothing byte-equal", candidate)
		}
	})
}
