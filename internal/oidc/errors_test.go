package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// TestWriteErrorTakesTheStatusOfTheError: an error that is not an OAuth
// error is answered with httpx.StatusOf's status and an OAuth code that
// fits it, and its words never reach the client.
func TestWriteErrorTakesTheStatusOfTheError(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	const secret = "grant g-77 in /var/lib/stepgate"
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"fail/internal", errors.New(secret), http.StatusInternalServerError, "server_error"},
		{"fail/log-full", fmt.Errorf("%s: %w", secret, audit.ErrLogFull), http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"fail/quota", fmt.Errorf("%s: %w", secret, store.ErrQuota), http.StatusTooManyRequests, "temporarily_unavailable"},
		{"fail/gone-record", fmt.Errorf("%s: %w", secret, store.ErrNotFound), http.StatusNotFound, "invalid_request"},
		{"fail/oauth-error-kept", &Error{Code: "invalid_grant", Status: http.StatusBadRequest, Description: "expired", Debug: errors.New(secret)},
			http.StatusBadRequest, "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tp.writeError(rec, httptest.NewRequest(http.MethodPost, "/token", nil), tc.err)
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			raw := rec.Body.String()
			if err := json.Unmarshal([]byte(raw), &body); err != nil {
				t.Fatalf("body %q: %v", raw, err)
			}
			if rec.Code != tc.status || body.Error != tc.code || strings.Contains(raw, "g-77") || strings.Contains(raw, "/var/lib") {
				t.Fatalf("got %d %s; want %d %s and no word of the error", rec.Code, raw, tc.status, tc.code)
			}
		})
	}
}
