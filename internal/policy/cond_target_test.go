package policy

import "testing"

func TestTarget(t *testing.T) {
	t.Parallel()
	apps := target{kind: targetApps, allApps: true, appsExcl: newNameSet([]string{"wiki"})}
	some := target{kind: targetApps, apps: newNameSet([]string{"crm", "hr"})}
	ctxs := target{kind: targetContexts, contexts: []string{"c2", "c3"}}
	acts := target{kind: targetActions, actions: []string{ActionRegisterDevice}}
	tests := []struct {
		name string
		t    target
		r    Request
		want Reason
	}{
		{"ok/all-apps", apps, Request{App: "crm"}, ""},
		{"fail/all-apps-excluded", apps, Request{App: "wiki"}, ReasonAppExcluded},
		{"fail/no-app", apps, Request{Action: ActionRegisterDevice}, ReasonAppNotTargeted},
		{"ok/listed-app", some, Request{App: "hr"}, ""},
		{"fail/unlisted-app", some, Request{App: "mail"}, ReasonAppNotTargeted},
		{"ok/one-of-contexts", ctxs, Request{AuthContexts: []string{"c1", "c3"}}, ""},
		{"fail/other-context", ctxs, Request{AuthContexts: []string{"c1"}}, ReasonContextNotTargeted},
		{"fail/no-context", ctxs, Request{App: "crm"}, ReasonContextNotTargeted},
		{"ok/action", acts, Request{Action: ActionRegisterDevice}, ""},
		{"fail/other-action", acts, Request{Action: ActionRegisterSecurityInfo}, ReasonActionNotTargeted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.t.match(&tt.r); got != tt.want {
				t.Errorf("match = %q, want %q", got, tt.want)
			}
		})
	}
}
