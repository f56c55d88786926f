package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCSRF(t *testing.T) {
	t.Parallel()
	c := newCSRF([]byte("0123456789abcdef0123456789abcdef"), false)
	rec := httptest.NewRecorder()
	tok := c.token(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
	cookie := rec.Result().Cookies()[0]

	post := func(form url.Values, ck *http.Cookie) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if ck != nil {
			r.AddCookie(ck)
		}
		return r
	}
	other := newCSRF([]byte("another key, another deployment!"), false)
	otherTok := other.token(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	tests := []struct {
		name string
		r    *http.Request
		ok   bool
	}{
		{"ok/matching", post(url.Values{csrfField: {tok}}, cookie), true},
		{"fail/no-field", post(url.Values{}, cookie), false},
		{"fail/no-cookie", post(url.Values{csrfField: {tok}}, nil), false},
		{"attack/cookie-value-as-token", post(url.Values{csrfField: {cookie.Value}}, cookie), false},
		{"attack/planted-cookie", post(url.Values{csrfField: {tok}}, &http.Cookie{Name: cookie.Name, Value: strings.Repeat("B", 43)}), false},
		{"attack/token-from-other-key", post(url.Values{csrfField: {otherTok}}, cookie), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.valid(tc.r); got != tc.ok {
				t.Fatalf("valid = %v, want %v", got, tc.ok)
			}
		})
	}
}
