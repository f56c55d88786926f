package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/store"
)

// TestFailAnswersByKindAndLeaksNothing: the gateway's own failures take
// their status from httpx.StatusOf, never 502 (which blames the
// application), and the page shows no word of the error, which may name
// records and addresses; a server fault's incident id is in both the page
// and the log line.
func TestFailAnswersByKindAndLeaksNothing(t *testing.T) {
	t.Parallel()
	const secret = "row u-42 at /var/lib/stepgate/stepgate.db"
	tests := []struct {
		name     string
		err      error
		want     int
		incident bool
	}{
		{"fail/internal", errors.New(secret), http.StatusInternalServerError, true},
		{"fail/store-gone-record", fmt.Errorf("%s: %w", secret, store.ErrNotFound), http.StatusNotFound, false},
		{"fail/quota", fmt.Errorf("%s: %w", secret, store.ErrQuota), http.StatusTooManyRequests, false},
		{"fail/log-full", fmt.Errorf("%s: %w", secret, audit.ErrLogFull), http.StatusServiceUnavailable, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logged bytes.Buffer
			g, err := New(Deps{Issuer: "http://sso.example", Log: slog.New(slog.NewTextHandler(&logged, nil)),
				ErrorPage: func(w http.ResponseWriter, _ *http.Request, status int, msg string) { http.Error(w, msg, status) }})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			g.fail(rec, httptest.NewRequest(http.MethodGet, "http://bank.example/x", nil), tc.err)
			body := rec.Body.String()
			if rec.Code != tc.want || strings.Contains(body, "u-42") || strings.Contains(body, "/var/lib") {
				t.Fatalf("status %d body %q, want %d and no word of the error", rec.Code, body, tc.want)
			}
			i := strings.Index(logged.String(), "incident=")
			if tc.incident != (i >= 0) {
				t.Fatalf("log %q: incident logged %v, want %v", logged.String(), i >= 0, tc.incident)
			}
			if tc.incident && !strings.Contains(body, logged.String()[i+len("incident="):i+len("incident=")+16]) {
				t.Fatalf("page %q does not show the logged incident %q", body, logged.String()[i:])
			}
		})
	}
}

// TestUpstreamFailedClientGone: a client that left before the upstream
// answered is not the application's failure: 499 and no warning, while a
// refused connection stays 502 with one.
func TestUpstreamFailedClientGone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want int
		warn bool
	}{
		{"fail/upstream-refused", errors.New("dial tcp 127.0.0.1:9: connection refused"), http.StatusBadGateway, true},
		{"fail/upstream-timeout", fmt.Errorf("read: %w", context.DeadlineExceeded), http.StatusBadGateway, true},
		{"ok/client-gone", fmt.Errorf("read: %w", context.Canceled), httpx.StatusClientClosedRequest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logged bytes.Buffer
			g, err := New(Deps{Issuer: "http://sso.example", Log: slog.New(slog.NewTextHandler(&logged, nil)),
				ErrorPage: func(w http.ResponseWriter, _ *http.Request, status int, msg string) { http.Error(w, msg, status) }})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			g.upstreamFailed(rec, httptest.NewRequest(http.MethodGet, "http://bank.example/x", nil), &route{name: "bank"}, tc.err)
			if rec.Code != tc.want || strings.Contains(logged.String(), "upstream failed") != tc.warn {
				t.Fatalf("status %d, log %q; want %d, warning %v", rec.Code, logged.String(), tc.want, tc.warn)
			}
		})
	}
}
