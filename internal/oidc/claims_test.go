package oidc

import (
	"slices"
	"strings"
	"testing"
)

func TestParseClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		acrs    []string // requestedACRs of the result
		caps    []string // capabilities of the result
		wantErr string   // substring of the error; "" for success
	}{
		{name: "ok/empty", in: ""},
		{name: "ok/oidc-essential-acr", in: `{"id_token":{"acr":{"essential":true,"values":["c1","mfa"]}}}`, acrs: []string{"c1", "mfa"}},
		{name: "ok/oidc-acr-value", in: `{"id_token":{"acr":{"value":"c1"}}}`, acrs: []string{"c1"}},
		{name: "ok/value-then-values-without-repeats", in: `{"id_token":{"acr":{"value":"c1","values":["c2","c1"]}}}`, acrs: []string{"c1", "c2"}},
		{name: "ok/entra-acrs", in: `{"access_token":{"acrs":{"essential":true,"value":"c2"}}}`, acrs: []string{"c2"}},
		{name: "ok/entra-acrs-and-capabilities", in: `{"access_token":{"acrs":{"essential":true,"value":"c2"},"xms_cc":{"values":["cp1","llt"]}}}`, acrs: []string{"c2"}, caps: []string{"cp1", "llt"}},
		{name: "ok/access-token-acr", in: `{"access_token":{"acr":{"values":["c3"]}}}`, acrs: []string{"c3"}},
		{name: "ok/id-token-before-access-token", in: `{"access_token":{"acrs":{"value":"c2"}},"id_token":{"acr":{"value":"c1"}}}`, acrs: []string{"c1", "c2"}},
		{name: "ok/null-claims", in: `{"id_token":{"acr":null,"email":null},"userinfo":{"name":null}}`},
		{name: "ok/userinfo-acr-is-a-requirement-too", in: `{"userinfo":{"acr":{"values":["c2"]}}}`, acrs: []string{"c2"}},
		{name: "ok/non-enforced-claim-any-value", in: `{"id_token":{"email":{"value":42}}}`},
		{name: "ok/null-asks-nothing", in: `null`},
		{name: "ok/empty-sets", in: `{"id_token":{},"userinfo":{},"access_token":{}}`},
		// null means "not given" (OIDC Core 5.5.1): a value of null is no
		// requirement, not a requirement for the acr "".
		{name: "ok/null-value-is-absent", in: `{"id_token":{"acr":{"essential":true,"value":null,"values":["c1"]}}}`, acrs: []string{"c1"}},
		{name: "ok/null-in-values-is-absent", in: `{"access_token":{"acrs":{"values":[null,"c2"]},"xms_cc":{"values":[null]}}}`, acrs: []string{"c2"}},
		{name: "ok/whitespace-around", in: " \n{\"id_token\":{\"acr\":{\"value\":\"c1\"}}}\n ", acrs: []string{"c1"}},

		{name: "fail/not-json", in: `id_token=acr`, wantErr: "not a JSON object"},
		{name: "fail/array", in: `[{"id_token":{}}]`, wantErr: "not a JSON object"},
		{name: "fail/truncated", in: `{"id_token":{"acr":`, wantErr: "not a JSON object"},
		{name: "fail/trailing-garbage", in: `{"id_token":{}}x`, wantErr: "not a JSON object"},
		{name: "fail/trailing-brace", in: `{"id_token":{"acr":{"value":"c1"}}}}`, wantErr: "not a JSON object"},
		{name: "fail/trailing-bracket", in: `{"id_token":{}}]`, wantErr: "not a JSON object"},
		{name: "fail/second-object", in: `{"id_token":{}}{"access_token":{}}`, wantErr: "not a JSON object"},
		// A misspelt member would silently drop the requirement it
		// carries.
		{name: "fail/unknown-top-level", in: `{"acess_token":{"acrs":{"value":"c2"}}}`, wantErr: `unknown member "acess_token"`},
		{name: "fail/top-level-xms_cc", in: `{"xms_cc":{"values":["cp1"]}}`, wantErr: `unknown member "xms_cc"`},
		{name: "fail/unknown-spec-field", in: `{"id_token":{"acr":{"essential":true,"valeus":["c2"]}}}`, wantErr: "claims.id_token: acr"},
		{name: "fail/set-not-object", in: `{"id_token":["acr"]}`, wantErr: "claims.id_token: must be an object"},
		{name: "fail/spec-not-object", in: `{"id_token":{"acr":"c2"}}`, wantErr: "claims.id_token: acr"},
		{name: "fail/essential-not-bool", in: `{"id_token":{"acr":{"essential":"yes","value":"c2"}}}`, wantErr: "acr"},
		{name: "fail/acr-number", in: `{"id_token":{"acr":{"values":[2]}}}`, wantErr: "acr: 2 is not a string"},
		{name: "fail/acr-object", in: `{"id_token":{"acr":{"value":{"id":"c2"}}}}`, wantErr: "is not a string"},
		{name: "fail/acrs-bool", in: `{"access_token":{"acrs":{"value":true}}}`, wantErr: "acrs: true is not a string"},
		{name: "fail/xms_cc-number", in: `{"access_token":{"xms_cc":{"values":[1]}}}`, wantErr: "xms_cc: 1 is not a string"},
		{name: "fail/repeated-top-member", in: `{"access_token":{"acrs":{"value":"c2"}},"access_token":{}}`, wantErr: `names the member "access_token" twice`},
		{name: "fail/repeated-claim", in: `{"id_token":{"acr":{"values":["c2"]},"acr":null}}`, wantErr: `names the member "acr" twice`},
		{name: "fail/repeated-spec-member", in: `{"id_token":{"acr":{"value":"c2","value":"single-factor"}}}`, wantErr: `names the member "value" twice`},
		{name: "ok/same-name-in-different-objects", in: `{"id_token":{"acr":{"values":["c2"]}},"access_token":{"acr":{"values":["c2"]}}}`, acrs: []string{"c2"}},
		{name: "fail/too-long", in: `{"id_token":{"email":{"value":"` + strings.Repeat("a", maxClaimsParam) + `"}}}`, wantErr: "longer than 8192 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr, err := ParseClaims(tc.in)
			if strings.HasPrefix(tc.name, "fail/") {
				if err == nil {
					t.Fatalf("ParseClaims(%q) = %+v, want an error", tc.in, cr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClaims(%q): %v", tc.in, err)
			}
			if got := cr.requestedACRs(); !slices.Equal(got, tc.acrs) {
				t.Errorf("requestedACRs = %q, want %q", got, tc.acrs)
			}
			if got := cr.capabilities(); !slices.Equal(got, tc.caps) {
				t.Errorf("capabilities = %q, want %q", got, tc.caps)
			}
		})
	}
}

// requestedACRs lists every acr value the claims parameter requests.
func (cr *ClaimsRequest) requestedACRs() []string { return allValues(cr.acrRequirements()) }

// TestACRRequirementsKeepEachParameter checks that each parameter that
// names acr values is its own requirement, claims first and acr_values
// last, so none can stand in for another.
func TestACRRequirementsKeepEachParameter(t *testing.T) {
	t.Parallel()
	cr, err := ParseClaims(`{"access_token":{"acrs":{"value":"c2"},"acr":null},"id_token":{"acr":{"essential":true,"values":["c1","mfa"]}},"userinfo":{"acr":{"value":"c3"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	got := acrRequirements(&flow{ACRValues: []string{"single-factor", "mfa", "single-factor"}, Claims: cr})
	want := []acrRequirement{
		{"claims id_token acr", []string{"c1", "mfa"}},
		{"claims userinfo acr", []string{"c3"}},
		{"claims access_token acrs", []string{"c2"}},
		{"acr_values", []string{"single-factor", "mfa"}},
	}
	if !slices.EqualFunc(got, want, func(a, b acrRequirement) bool { return a.from == b.from && slices.Equal(a.values, b.values) }) {
		t.Fatalf("acrRequirements = %+v, want %+v", got, want)
	}
}
