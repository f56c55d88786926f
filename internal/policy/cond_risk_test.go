package policy

import "testing"

func TestRiskCond(t *testing.T) {
	t.Parallel()
	c := &compiler{}
	mediumUp := c.risk(nil, "r", []string{"medium", "high"})
	lowOnly := c.risk(nil, "r", []string{"low"})
	none := c.risk(nil, "r", []string{"none"})
	if len(c.problems) > 0 {
		t.Fatal(c.problems)
	}
	tests := []struct {
		name      string
		cond      riskCond
		level     string
		ok, below bool
	}{
		{"ok/unset-matches-anything", riskCond{}, "high", true, false},
		{"ok/high", mediumUp, "high", true, false},
		{"ok/medium", mediumUp, "medium", true, false},
		{"fail/low-below", mediumUp, "low", false, true},
		{"fail/empty-is-none-below", mediumUp, "", false, true},
		{"fail/high-not-included", lowOnly, "high", false, false},
		{"fail/none-below-low", lowOnly, "none", false, true},
		{"ok/none-listed", none, "", true, false},
		{"fail/unknown-level", mediumUp, "extreme", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, below := tt.cond.match(tt.level)
			if ok != tt.ok || below != tt.below {
				t.Errorf("match(%q) = %v, %v; want %v, %v", tt.level, ok, below, tt.ok, tt.below)
			}
		})
	}
}
