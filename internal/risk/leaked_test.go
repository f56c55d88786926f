package risk

import "testing"

type listOf []string

func (l listOf) Contains(pw string) bool {
	for _, s := range l {
		if s == pw {
			return true
		}
	}
	return false
}

func TestLeakedPassword(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{Breached: listOf{"Summer2024!", "password1"}})
	off := newEngine(t, Config{})
	ok := SignIn{UserID: "alice", Success: true}
	tests := []struct {
		name string
		e    *Engine
		in   SignIn
		pw   string
		want bool
	}{
		{"ok/not-listed", e, ok, "correct horse battery staple", false},
		{"ok/no-list", off, ok, "password1", false},
		{"ok/failed-attempt-cannot-raise-victim-risk", e, SignIn{UserID: "alice"}, "password1", false},
		{"ok/empty", e, ok, "", false},
		{"fail/listed", e, ok, "Summer2024!", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, got := tt.e.LeakedPassword(tt.in, tt.pw)
			if got != tt.want {
				t.Fatalf("LeakedPassword = %v %+v, want %v", got, d, tt.want)
			}
			if got && (d.Level != High || d.Type != TypeLeaked || d.Reason != ReasonLeakedPassword) {
				t.Errorf("detection %+v", d)
			}
			for k, v := range d.Evidence {
				if v == tt.pw {
					t.Errorf("evidence %q holds the password", k)
				}
			}
		})
	}
}
