package deadend_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/deadend"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

var now = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

// fakeStore holds users and their credentials by user id.
type fakeStore struct {
	users []store.User
	creds map[string][]store.Credential
	fail  error
}

func (f *fakeStore) ListUsers(context.Context) ([]store.User, error) { return f.users, f.fail }

func (f *fakeStore) ListCredentials(_ context.Context, id string) ([]store.Credential, error) {
	return f.creds[id], nil
}

// user adds a user with a password and credentials of the given types.
func (f *fakeStore) user(name string, groups []string, types ...string) store.User {
	u := store.User{ID: "id-" + name, Username: name, Groups: groups, PasswordHash: "$argon2id$x", CreatedAt: now.Add(-90 * 24 * time.Hour)}
	f.users = append(f.users, u)
	if f.creds == nil {
		f.creds = map[string][]store.Credential{}
	}
	for i, t := range types {
		f.creds[u.ID] = append(f.creds[u.ID], store.Credential{ID: u.ID + "-" + t + string(rune('0'+i)), UserID: u.ID, Type: t})
	}
	return u
}

func compile(t *testing.T, src string) *policy.Snapshot {
	t.Helper()
	return compileB(t, src)
}

func compileB(t testing.TB, src string) *policy.Snapshot {
	t.Helper()
	doc, probs := policy.Parse("p.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatalf("parse: %v", probs)
	}
	snap, probs := policy.Compile(nil, doc)
	if len(probs) > 0 {
		t.Fatalf("compile: %v", probs)
	}
	return snap
}

const policies = `
auth_contexts:
  - {id: c1, name: Read PII}
  - {id: c3, name: Admin action}
policies:
  - name: pii-needs-mfa
    state: enabled
    users: {include: {users: [all]}, exclude: {groups: [contractors]}}
    target: {auth_contexts: [c1]}
    grant: {controls: [mfa]}
  - name: admin-needs-passkey
    state: enabled
    users: {include: {groups: [ops]}}
    target: {auth_contexts: [c3]}
    grant: {controls: [{strength: phishing-resistant}]}
  - name: block-legacy
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {client_apps: [legacy]}
    grant: block
  - name: trial
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    grant: {controls: [{strength: phishing-resistant}]}
`

var allMethods = []string{"webauthn", "push", "totp", "otp-email", "recovery-code"}

func analyzer(fs *fakeStore, rules deadend.Rules) *deadend.Analyzer {
	return &deadend.Analyzer{Store: fs, Methods: allMethods, Rules: rules, Now: func() time.Time { return now }}
}

func find(rep deadend.Report, pol string) (deadend.PolicyReport, bool) {
	for _, p := range rep.Policies {
		if p.Policy == pol {
			return p, true
		}
	}
	return deadend.PolicyReport{}, false
}

func finding(p deadend.PolicyReport, user string) (deadend.Finding, bool) {
	for _, f := range p.Stranded {
		if f.Username == user {
			return f, true
		}
	}
	return deadend.Finding{}, false
}

func TestAnalyze(t *testing.T) {
	t.Parallel()
	snap := compile(t, policies)
	tests := []struct {
		name     string
		user     func(*fakeStore)
		rules    deadend.Rules
		policy   string
		stranded bool
		verdict  deadend.Verdict
		why      string
		register []string
	}{
		{name: "ok/totp-meets-mfa", user: func(f *fakeStore) { f.user("alice", nil, "totp") },
			policy: "pii-needs-mfa"},
		{name: "ok/passkey-meets-phishing-resistant", user: func(f *fakeStore) { f.user("olga", []string{"ops"}, "webauthn") },
			policy: "admin-needs-passkey"},
		{name: "fail/needs-phishing-resistant", user: func(f *fakeStore) { f.user("oscar", []string{"ops"}, "totp") },
			rules: deadend.Rules{PhishingResistant: true}, policy: "admin-needs-passkey", stranded: true, verdict: deadend.Stuck,
			why: "needs phishing-resistant; has totp, password; registering webauthn would meet it, but registering a method takes a temporary access pass", register: []string{"webauthn"}},
		{name: "fixable/can-register-passkey", user: func(f *fakeStore) { f.user("oscar", []string{"ops"}, "totp") },
			policy: "admin-needs-passkey", stranded: true, verdict: deadend.Fixable,
			why: "needs phishing-resistant; has totp, password; fixable by registering webauthn", register: []string{"webauthn"}},
		{name: "fixable/can-register-totp", user: func(f *fakeStore) { f.user("newbie", nil) },
			rules: deadend.Rules{Window: 365 * 24 * time.Hour}, policy: "pii-needs-mfa", stranded: true, verdict: deadend.Fixable,
			why: "needs mfa; has password; fixable by registering webauthn or push or totp or otp-email", register: []string{"webauthn", "push", "totp", "otp-email"}},
		{name: "fail/password-only-no-window", user: func(f *fakeStore) { f.user("bob", nil) },
			policy: "pii-needs-mfa", stranded: true, verdict: deadend.Stuck,
			why: "needs mfa; has password; registering webauthn or push or totp or otp-email would meet it, but registering a method takes a temporary access pass from an administrator"},
		{name: "fail/window-over", user: func(f *fakeStore) { f.user("bob", nil) },
			rules: deadend.Rules{Window: 30 * 24 * time.Hour}, policy: "pii-needs-mfa", stranded: true, verdict: deadend.Stuck},
		{name: "fail/recovery-codes-meet-nothing", user: func(f *fakeStore) { f.user("rita", nil, "recovery-code") },
			policy: "pii-needs-mfa", stranded: true, verdict: deadend.Fixable, why: "needs mfa; has password; fixable by registering"},
		{name: "ok/excluded-user-not-listed", user: func(f *fakeStore) { f.user("carl", []string{"contractors"}) },
			policy: "pii-needs-mfa"},
		{name: "ok/out-of-scope-not-listed", user: func(f *fakeStore) { f.user("bob", nil) },
			policy: "admin-needs-passkey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := &fakeStore{}
			tc.user(fs)
			rep, err := analyzer(fs, tc.rules).Analyze(context.Background(), snap)
			if err != nil {
				t.Fatal(err)
			}
			p, ok := find(rep, tc.policy)
			if !ok {
				t.Fatalf("policy %s missing from the report: %+v", tc.policy, rep)
			}
			f, stranded := finding(p, fs.users[0].Username)
			if stranded != tc.stranded {
				t.Fatalf("stranded = %v, want %v (%+v)", stranded, tc.stranded, p)
			}
			if !stranded {
				return
			}
			if f.Verdict != tc.verdict {
				t.Errorf("verdict = %s, want %s (%s)", f.Verdict, tc.verdict, f.Why)
			}
			if !strings.HasPrefix(f.Why, tc.why) {
				t.Errorf("why = %q, want it to start with %q", f.Why, tc.why)
			}
			if tc.register != nil && !slices.Equal(f.Register, tc.register) {
				t.Errorf("register = %v, want %v", f.Register, tc.register)
			}
		})
	}
}

func TestAnalyzeCountsAndLeavesOut(t *testing.T) {
	t.Parallel()
	snap := compile(t, policies)
	fs := &fakeStore{}
	fs.user("a1", []string{"ops", "eng"})
	fs.user("a2", []string{"ops"}, "totp")
	fs.user("a3", []string{"ops"}, "webauthn")
	fs.user("a4", []string{"contractors", "ops"})
	off := fs.user("gone", []string{"ops"})
	fs.users[len(fs.users)-1].Disabled = true
	rep, err := analyzer(fs, deadend.Rules{}).Analyze(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Users != 4 {
		t.Errorf("users looked at = %d, want 4 (the disabled one left out)", rep.Users)
	}
	for _, p := range rep.Policies {
		if p.Policy == "block-legacy" || p.Policy == "trial" {
			t.Errorf("%s listed: block and report-only policies strand nobody", p.Policy)
		}
		if _, ok := finding(p, off.Username); ok {
			t.Errorf("%s lists a disabled user", p.Policy)
		}
	}
	adm, _ := find(rep, "admin-needs-passkey")
	if adm.InScope != 4 || len(adm.Stranded) != 3 || adm.Groups["ops"] != 3 || adm.Groups["eng"] != 1 || adm.Groups["contractors"] != 1 {
		t.Errorf("admin-needs-passkey: in scope %d, stranded %d, groups %v; want 4, 3, ops 3 eng 1 contractors 1", adm.InScope, len(adm.Stranded), adm.Groups)
	}
	if adm.Fixable != 1 || adm.Stuck != 2 {
		t.Errorf("fixable %d stuck %d, want 1 (a2 has totp to prove with) and 2", adm.Fixable, adm.Stuck)
	}
	pii, _ := find(rep, "pii-needs-mfa")
	if _, ok := finding(pii, "a4"); ok || pii.InScope != 3 {
		t.Errorf("pii-needs-mfa lists the excluded contractor or counts them in scope (%d): %+v", pii.InScope, pii.Stranded)
	}
	if pii.Nobody() {
		t.Error("pii-needs-mfa: Nobody() is true though a2 and a3 can meet it")
	}
	if rep.Stranded() != 3 {
		t.Errorf("distinct stranded users = %d, want 3", rep.Stranded())
	}
}

func TestAnalyzeApprovalAndNobody(t *testing.T) {
	t.Parallel()
	snap := compile(t, `
policies:
  - name: needs-approval
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [payroll]}}
    grant: {controls: [approval]}
`)
	fs := &fakeStore{}
	fs.user("a", nil, "webauthn")
	fs.user("b", nil, "totp")
	rep, err := analyzer(fs, deadend.Rules{}).Analyze(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Policies[0]
	if !p.Nobody() || p.Stuck != 2 {
		t.Fatalf("an approval-only grant must strand everyone, stuck: %+v", p)
	}
	if f := p.Stranded[0]; !strings.Contains(f.Why, "needs approval") || !strings.Contains(f.Why, "no method of this deployment would meet it") {
		t.Errorf("why = %q", f.Why)
	}
}

func TestRegisterPolicyBlocksTheFix(t *testing.T) {
	t.Parallel()
	snap := compile(t, `
policies:
  - name: pii-needs-passkey
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [crm]}}
    grant: {controls: [{strength: phishing-resistant}]}
  - name: registration-needs-passkey
    state: enabled
    users: {include: {users: [all]}}
    target: {user_actions: [register-security-info]}
    grant: {controls: [{strength: phishing-resistant}]}
`)
	fs := &fakeStore{}
	u := fs.user("t", nil, "totp")
	found, err := analyzer(fs, deadend.Rules{}).ForUser(context.Background(), snap, u)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 {
		t.Fatalf("findings = %+v, want both policies", found)
	}
	for _, f := range found {
		if f.Verdict != deadend.Stuck || !strings.Contains(f.Why, "registration-needs-passkey") {
			t.Errorf("%s: %s %q; a policy on registering that the user cannot meet leaves them stuck", f.Policy, f.Verdict, f.Why)
		}
	}
}

func TestAnalyzeStoreFailure(t *testing.T) {
	t.Parallel()
	fs := &fakeStore{fail: errors.New("disk on fire")}
	if _, err := analyzer(fs, deadend.Rules{}).Analyze(context.Background(), compile(t, policies)); err == nil {
		t.Fatal("a store failure must be an error, not an empty report")
	}
}

// A usable temporary access pass opens a registration whatever the
// rules, as the security page lets it: the holder is fixable, not stuck,
// and a failure to read passes is an error, never a guess.
func TestPassOpensTheRegistration(t *testing.T) {
	t.Parallel()
	snap := compile(t, policies)
	tests := []struct {
		name    string
		rules   deadend.Rules
		pass    bool
		fail    error
		verdict deadend.Verdict
	}{
		{name: "fixable/pass-opens-registration", pass: true, verdict: deadend.Fixable},
		{name: "fixable/pass-where-passkeys-are-required", rules: deadend.Rules{PhishingResistant: true}, pass: true, verdict: deadend.Fixable},
		{name: "fail/no-pass", verdict: deadend.Stuck},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := &fakeStore{}
			u := fs.user("bob", nil)
			a := analyzer(fs, tc.rules)
			a.HasPass = func(_ context.Context, id string) (bool, error) { return tc.pass && id == u.ID, nil }
			found, err := a.ForUser(context.Background(), snap, u)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 1 || found[0].Verdict != tc.verdict {
				t.Fatalf("findings = %+v, want one, %s", found, tc.verdict)
			}
		})
	}
	t.Run("fail/pass-store-fails", func(t *testing.T) {
		t.Parallel()
		fs := &fakeStore{}
		fs.user("bob", nil)
		a := analyzer(fs, deadend.Rules{})
		a.HasPass = func(context.Context, string) (bool, error) { return false, errors.New("disk on fire") }
		if _, err := a.Analyze(context.Background(), snap); err == nil {
			t.Fatal("a failure to read passes must be an error, not a verdict")
		}
	})
}
