package policy

import "testing"

func TestAssignment(t *testing.T) {
	t.Parallel()
	c := &compiler{dir: goldenDirectory()}
	c.groupHierarchy()
	a := c.assignment(nil, "users", Assignments{
		Include: Subjects{Groups: []string{"finance"}, Roles: []string{"auditor"}, Users: []string{"bob"}, Clients: []string{"ci-bot"}},
		Exclude: Subjects{Groups: []string{"finance-emea"}, Users: []string{"dave"}},
	})
	if len(c.problems) > 0 {
		t.Fatal(c.problems)
	}
	tests := []struct {
		name string
		sub  Subject
		want Reason
	}{
		{"ok/direct-group", Subject{Username: "alice", Groups: []string{"finance"}}, ""},
		{"ok/role", Subject{Username: "erin", Roles: []string{"auditor"}}, ""},
		{"ok/user-by-name", Subject{Username: "bob"}, ""},
		{"ok/user-by-id", Subject{ID: "bob", Username: "robert"}, ""},
		{"ok/client", Subject{Client: true, ID: "ci-bot"}, ""},
		{"fail/nested-excluded", Subject{Username: "carol", Groups: []string{"finance-emea"}}, ReasonUserExcluded},
		{"fail/user-excluded-despite-group", Subject{Username: "dave", Groups: []string{"finance"}}, ReasonUserExcluded},
		{"fail/parent-group-only", Subject{Username: "zoe", Groups: []string{"staff"}}, ReasonUserNotIncluded},
		{"fail/nobody", Subject{Username: "zoe"}, ReasonUserNotIncluded},
		{"fail/client-not-listed", Subject{Client: true, ID: "batch-job"}, ReasonUserNotIncluded},
		{"fail/client-with-user-name", Subject{Client: true, ID: "bob"}, ReasonUserNotIncluded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := a.match(&tt.sub); got != tt.want {
				t.Errorf("match(%+v) = %q, want %q", tt.sub, got, tt.want)
			}
		})
	}
}

func TestNameSet(t *testing.T) {
	t.Parallel()
	small := newNameSet([]string{"a", "b", "a"})
	if small.len() != 2 || !small.has("b") || small.has("c") || small.big != nil {
		t.Errorf("small set wrong: %+v", small)
	}
	var names []string
	for i := range 20 {
		names = append(names, string(rune('a'+i)))
	}
	big := newNameSet(names)
	if big.len() != 20 || !big.has("t") || big.has("z") || big.big == nil {
		t.Errorf("big set wrong: %+v", big)
	}
	if !big.hasAny([]string{"x", "y", "c"}) || big.hasAny([]string{"x"}) || (nameSet{}).hasAny([]string{"a"}) {
		t.Error("hasAny wrong")
	}
}
