package errkind

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	t.Parallel()
	gone := New(Gone, "used")
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"ok/nil-is-internal", nil, Internal},
		{"ok/unmarked-is-internal", errors.New("x"), Internal},
		{"ok/sentinel", gone, Gone},
		{"ok/wrapped-sentinel", fmt.Errorf("link 7: %w", gone), Gone},
		{"ok/marked", Mark(errors.New("x"), Invalid), Invalid},
		{"ok/outermost-mark-wins", Mark(gone, Forbidden), Forbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Of(tc.err); got != tc.want {
				t.Fatalf("Of(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestMarkKeepsTheError(t *testing.T) {
	t.Parallel()
	inner := errors.New("inner")
	m := Mark(inner, Invalid)
	if !errors.Is(m, inner) || m.Error() != "inner" {
		t.Fatalf("Mark hides its error: %v", m)
	}
	if Mark(nil, Invalid) != nil {
		t.Fatal("Mark(nil) is not nil")
	}
}
