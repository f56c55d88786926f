package policy

import "testing"

func TestClientAppCond(t *testing.T) {
	t.Parallel()
	c := &compiler{}
	modern := c.clientAppCond(nil, "c", []string{ClientBrowser, ClientMobileDesktop})
	c.clientAppCond(nil, "c", []string{"smtp"})
	if len(c.problems) != 1 {
		t.Fatalf("want one problem for smtp, got %v", c.problems)
	}
	tests := []struct {
		name, app string
		cond      clientAppCond
		want      Reason
	}{
		{"ok/unset", ClientLegacy, clientAppCond{}, ""},
		{"ok/browser", ClientBrowser, modern, ""},
		{"ok/mobile", ClientMobileDesktop, modern, ""},
		{"fail/legacy", ClientLegacy, modern, ReasonClientAppNotIncluded},
		{"fail/unknown", "", modern, ReasonClientAppNotIncluded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.cond.match(tt.app); got != tt.want {
				t.Errorf("match(%q) = %q, want %q", tt.app, got, tt.want)
			}
		})
	}
}
