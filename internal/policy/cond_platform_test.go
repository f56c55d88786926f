package policy

import "testing"

func TestPlatformCond(t *testing.T) {
	t.Parallel()
	compile := func(ie IncludeExclude) platformCond {
		c := &compiler{}
		pc := c.platformCond(nil, "p", ie)
		if len(c.problems) > 0 {
			t.Fatal(c.problems)
		}
		return pc
	}
	mobile := compile(IncludeExclude{Include: []string{"ios", "android"}})
	notWindows := compile(IncludeExclude{Exclude: []string{"windows"}})
	unknown := compile(IncludeExclude{Include: []string{"unknown"}})
	tests := []struct {
		name     string
		cond     platformCond
		platform string
		want     Reason
	}{
		{"ok/unset", platformCond{}, "", ""},
		{"ok/ios", mobile, "ios", ""},
		{"fail/macos", mobile, "macos", ReasonPlatformNotIncluded},
		{"fail/empty-is-unknown", mobile, "", ReasonPlatformNotIncluded},
		{"ok/exclude-only-linux", notWindows, "linux", ""},
		{"ok/exclude-only-unknown", notWindows, "", ""},
		{"fail/exclude-only-windows", notWindows, "windows", ReasonPlatformExcluded},
		{"ok/unknown-empty", unknown, "", ""},
		{"ok/unknown-garbage", unknown, "beos", ""},
		{"fail/unknown-vs-known", unknown, "android", ReasonPlatformNotIncluded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.cond.match(tt.platform); got != tt.want {
				t.Errorf("match(%q) = %q, want %q", tt.platform, got, tt.want)
			}
		})
	}
}
