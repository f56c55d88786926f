package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/errkind"
)

func TestStatusOf(t *testing.T) {
	t.Parallel()
	notFound := errkind.New(errkind.NotFound, "not found")
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"ok/nil", nil, http.StatusOK},
		{"fail/unmarked-is-internal", errors.New("disk on fire"), http.StatusInternalServerError},
		{"fail/invalid", errkind.New(errkind.Invalid, "bad"), http.StatusBadRequest},
		{"fail/unauthenticated", errkind.New(errkind.Unauthenticated, "wrong code"), http.StatusUnauthorized},
		{"fail/forbidden", errkind.New(errkind.Forbidden, "no"), http.StatusForbidden},
		{"fail/not-found-wrapped", fmt.Errorf("get user 42: %w", notFound), http.StatusNotFound},
		{"fail/conflict", errkind.New(errkind.Conflict, "taken"), http.StatusConflict},
		{"fail/gone", errkind.New(errkind.Gone, "used link"), http.StatusGone},
		{"fail/throttled", fmt.Errorf("%w: code dead", errkind.New(errkind.Throttled, "too many")), http.StatusTooManyRequests},
		{"fail/unavailable", errkind.New(errkind.Unavailable, "log full"), http.StatusServiceUnavailable},
		{"fail/upstream", errkind.Mark(errors.New("connection refused"), errkind.Upstream), http.StatusBadGateway},
		{"fail/body-too-large", fmt.Errorf("decode: %w", &http.MaxBytesError{Limit: 10}), http.StatusRequestEntityTooLarge},
		{"fail/client-gone-wins", errkind.Mark(fmt.Errorf("query: %w", context.Canceled), errkind.Upstream), StatusClientClosedRequest},
		{"fail/server-deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{"fail/marked-deadline-keeps-its-kind", errkind.Mark(context.DeadlineExceeded, errkind.Upstream), http.StatusBadGateway},
		{"fail/outermost-kind-wins", errkind.Mark(notFound, errkind.Forbidden), http.StatusForbidden},
		{"fail/joined-first-kind", errors.Join(errors.New("plain"), notFound), http.StatusNotFound},
		{"fail/unknown-kind", errkind.New(errkind.Kind(200), "future"), http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := StatusOf(tc.err); got != tc.want {
				t.Fatalf("StatusOf(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

// TestMessageOfLeaksNothing: whatever an error says (a path, a query, an
// address), the message shown for it is one of the fixed texts.
func TestMessageOfLeaksNothing(t *testing.T) {
	t.Parallel()
	secret := "SELECT * FROM users WHERE id='42' at /var/lib/stepgate/db 10.0.0.7"
	for _, k := range []errkind.Kind{errkind.Internal, errkind.Invalid, errkind.Unauthenticated, errkind.Forbidden,
		errkind.NotFound, errkind.Conflict, errkind.Gone, errkind.Throttled, errkind.Unavailable, errkind.Upstream} {
		err := errkind.Mark(errors.New(secret), k)
		msg := MessageOf(err)
		if msg == "" || strings.Contains(msg, "SELECT") || strings.Contains(msg, "10.0.0.7") || strings.Contains(msg, "/var/") {
			t.Errorf("kind %s: message %q is empty or quotes the error", k, msg)
		}
	}
}

func TestFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		wantLevel string
		incident  bool
	}{
		{"fail/internal-logged-with-incident", errors.New("disk on fire"), "ERROR", true},
		{"fail/unavailable-warned", errkind.New(errkind.Unavailable, "log full"), "WARN", false},
		{"fail/client-gone-debug", context.Canceled, "DEBUG", false},
		{"fail/refusal-debug", errkind.New(errkind.Invalid, "bad"), "DEBUG", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			f := Fail(context.Background(), log, "request failed", tc.err, "path", "/x")
			if f.Status != StatusOf(tc.err) {
				t.Errorf("status %d, want %d", f.Status, StatusOf(tc.err))
			}
			line := buf.String()
			if !strings.Contains(line, "level="+tc.wantLevel) || !strings.Contains(line, "path=/x") {
				t.Errorf("logged %q, want level %s with the caller's attributes", line, tc.wantLevel)
			}
			if tc.incident != (f.Incident != "") {
				t.Fatalf("incident %q, want one: %v", f.Incident, tc.incident)
			}
			if tc.incident && (!strings.Contains(line, "incident="+f.Incident) || !strings.Contains(f.Message, f.Incident)) {
				t.Errorf("incident %s not in both log %q and message %q", f.Incident, line, f.Message)
			}
			if strings.Contains(f.Message, tc.err.Error()) {
				t.Errorf("message %q quotes the error", f.Message)
			}
		})
	}
}
