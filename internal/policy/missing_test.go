package policy

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestMissingMerges(t *testing.T) {
	t.Parallel()
	snap := mustCompile(t, "strengths: [{name: keys, combinations: [webauthn]}]\npolicies: []\n")
	need := func(st string, maxAge time.Duration) Need {
		return Need{Kind: KindStrength, Strength: st, MaxAge: Duration(maxAge)}
	}
	device := Need{Kind: KindCompliantDevice}
	tests := []struct {
		name string
		in   []Requirement
		want []Requirement
	}{
		{"ok/same-strength-tighter-window",
			[]Requirement{{AnyOf: []Need{need("mfa", 8*time.Hour)}, Policies: []string{"a"}}, {AnyOf: []Need{need("mfa", time.Hour)}, Policies: []string{"b"}}},
			[]Requirement{{AnyOf: []Need{need("mfa", time.Hour)}, Policies: []string{"a", "b"}}}},
		{"ok/window-beats-none",
			[]Requirement{{AnyOf: []Need{need("mfa", 0)}, Policies: []string{"a"}}, {AnyOf: []Need{need("mfa", time.Hour)}, Policies: []string{"b"}}},
			[]Requirement{{AnyOf: []Need{need("mfa", time.Hour)}, Policies: []string{"a", "b"}}}},
		{"ok/stronger-absorbs-weaker",
			[]Requirement{{AnyOf: []Need{need("mfa", time.Hour)}, Policies: []string{"a"}}, {AnyOf: []Need{need("phishing-resistant", 10*time.Minute)}, Policies: []string{"b"}}},
			[]Requirement{{AnyOf: []Need{need("phishing-resistant", 10*time.Minute)}, Policies: []string{"b", "a"}}}},
		{"fail/stronger-but-staler-kept",
			[]Requirement{{AnyOf: []Need{need("mfa", 10*time.Minute)}, Policies: []string{"a"}}, {AnyOf: []Need{need("phishing-resistant", time.Hour)}, Policies: []string{"b"}}},
			[]Requirement{{AnyOf: []Need{need("mfa", 10*time.Minute)}, Policies: []string{"a"}}, {AnyOf: []Need{need("phishing-resistant", time.Hour)}, Policies: []string{"b"}}}},
		{"ok/single-absorbs-one-of",
			[]Requirement{{AnyOf: []Need{need("mfa", 0), device}, Policies: []string{"a"}}, {AnyOf: []Need{need("mfa", 0)}, Policies: []string{"b"}}},
			[]Requirement{{AnyOf: []Need{need("mfa", 0)}, Policies: []string{"b", "a"}}}},
		{"fail/custom-strength-not-implied",
			[]Requirement{{AnyOf: []Need{need("mfa", 0)}, Policies: []string{"a"}}, {AnyOf: []Need{need("keys", 0)}, Policies: []string{"b"}}},
			[]Requirement{{AnyOf: []Need{need("mfa", 0)}, Policies: []string{"a"}}, {AnyOf: []Need{need("keys", 0)}, Policies: []string{"b"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var reqs []Requirement
			for _, r := range tt.in {
				reqs = mergeRequirement(reqs, r)
			}
			reqs = snap.dropImplied(reqs)
			if len(reqs) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", reqs, tt.want)
			}
			for i := range reqs {
				if !reflect.DeepEqual(reqs[i].AnyOf, tt.want[i].AnyOf) || !slices.Equal(reqs[i].Policies, tt.want[i].Policies) {
					t.Errorf("requirement %d = %+v, want %+v", i, reqs[i], tt.want[i])
				}
			}
		})
	}
}

func TestStepUpMethods(t *testing.T) {
	mfa := []Requirement{{AnyOf: []Need{{Kind: KindStrength, Strength: "mfa", Options: [][]string{{"webauthn:uv"}, {"totp"}, {"recovery-code"}}}}}}
	device := []Requirement{{AnyOf: []Need{{Kind: KindCompliantDevice}}}}
	for _, tc := range []struct {
		name      string
		reqs      []Requirement
		available []string
		want      []string
		ok        bool
	}{
		{"ok/one-method", mfa, []string{"totp", "password"}, []string{"totp"}, true},
		{"ok/prompt-order-of-available", mfa, []string{"webauthn", "totp", "recovery-code", "password"}, []string{"webauthn", "totp", "recovery-code"}, true},
		{"fail/nothing-registered", mfa, []string{"password"}, nil, false},
		{"fail/device-cannot-be-stepped-up", device, []string{"totp", "password"}, nil, false},
		{"ok/no-requirements", nil, []string{"password"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := StepUpMethods(tc.reqs, tc.available)
			if ok != tc.ok || !slices.Equal(got, tc.want) {
				t.Fatalf("StepUpMethods = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
