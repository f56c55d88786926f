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
