package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/risk"
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

// TestLogDetectionsEncodeAsBefore keeps the sign-in log readable across
// the move to its own detection shape: an entry encodes byte for byte as
// the detectors' own type did, so old and new entries decode the same.
func TestLogDetectionsEncodeAsBefore(t *testing.T) {
	t.Parallel()
	detections := []risk.Detection{
		{Type: risk.TypeUnfamiliar, Level: risk.Medium, Reason: risk.ReasonUnfamiliarProperties, Evidence: map[string]string{"country": "BR"}},
		{Type: "user-reported", Level: risk.High, Reason: "user-reported-fraud"},
		{Type: "none", Level: risk.None, Reason: "quiet"},
	}
	want, err := json.Marshal(detections)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(logDetections(detections))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("sign-in log detections encode as\n%s\nwant\n%s", got, want)
	}
	if logDetections(nil) != nil {
		t.Error("no detections must stay absent from the entry (omitempty)")
	}
}

// TestFrameRendersAFeaturePage frames another feature's content in the
// shared layout: the title, the stylesheet on Stepgate's own host, the
// content as the feature rendered it, and no sign-out form for a page
// that carries no session of the pages.
func TestFrameRendersAFeaturePage(t *testing.T) {
	t.Parallel()
	frame, err := NewFrame()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := frame.Render(rec, http.StatusAccepted, "Sign-in <approvals>", `<div id="feature">&lt;b&gt;</div>`); err != nil {
		t.Fatal(err)
	}
	page := rec.Body.String()
	if rec.Code != http.StatusAccepted || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{"<title>Sign-in &lt;approvals&gt; · Stepgate</title>", `href="/static/style.css"`, `<div id="feature">&lt;b&gt;</div>`} {
		if !strings.Contains(page, want) {
			t.Errorf("framed page lacks %s:\n%s", want, page)
		}
	}
	if strings.Contains(page, "csrf_token") {
		t.Errorf("framed page carries a sign-out form:\n%s", page)
	}
}
