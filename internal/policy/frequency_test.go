package policy

import "testing"

// TestSetsSignInFrequency: the flag an enforcer uses to skip evaluating
// for a sign-in frequency is set by an enabled policy's frequency only.
func TestSetsSignInFrequency(t *testing.T) {
	t.Parallel()
	const head = "policies:\n  - name: p\n    users: {include: {users: [all]}}\n    target: {apps: {include: [bank]}}\n    grant: {controls: [mfa]}\n"
	for _, tc := range []struct {
		name, extra string
		want        bool
	}{
		{"ok/enabled-frequency", "    state: enabled\n    session: {sign_in_frequency: 1h}\n", true},
		{"ok/every-time", "    state: enabled\n    session: {sign_in_frequency: every-time}\n", true},
		{"fail/report-only-frequency", "    state: report-only\n    session: {sign_in_frequency: 1h}\n", false},
		{"fail/disabled-frequency", "    state: disabled\n    session: {sign_in_frequency: 1h}\n", false},
		{"fail/no-frequency", "    state: enabled\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, probs := Parse("p.yaml", []byte(head+tc.extra))
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			snap, probs := Compile(nil, doc)
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			if got := snap.SetsSignInFrequency(); got != tc.want {
				t.Fatalf("SetsSignInFrequency() = %v, want %v", got, tc.want)
			}
		})
	}
	if Empty().SetsSignInFrequency() {
		t.Error("an empty set claims a sign-in frequency")
	}
}
