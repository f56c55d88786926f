package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/users"
)

// TestSMSEnrollThroughTheServer registers a phone number in its two
// steps (the number, then the code sent to it) through the real server,
// and sends the bad input an attacker or a clumsy user would at each
// step. Every answer is a page that says what to do; none is a 500.
func TestSMSEnrollThroughTheServer(t *testing.T) {
	logs := &syncBuffer{}
	ln, cfg := testConfig(t)
	s := &oidcServer{server: serve(t, ln, cfg, slog.New(slog.NewJSONHandler(logs, nil)))}
	u, err := s.app.Users.Add(context.Background(), users.NewUser{Username: testUser, Email: "alice@example.com", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	s.user = u
	b := browser(t)
	s.signIn(t, b, "/account")

	start := func(t *testing.T) (csrf, ceremony string) {
		t.Helper()
		resp, body := get(t, b, s.base+"/account/security/add?method=otp-sms")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `type="tel"`) {
			t.Fatalf("add otp-sms: %d\n%s", resp.StatusCode, body)
		}
		return formOf(t, body)
	}
	send := func(t *testing.T, csrf, ceremony, code string) (int, string) {
		t.Helper()
		resp, body := post(t, b, s.base+"/account/security/add", url.Values{"csrf_token": {csrf}, "ceremony": {ceremony}, "code": {code}})
		if resp.StatusCode >= 500 || strings.Contains(body, "goroutine") {
			t.Fatalf("%q: status %d\n%s", code, resp.StatusCode, body)
		}
		return resp.StatusCode, body
	}

	for _, tc := range []struct{ name, phone string }{
		{"fail/not-a-number", "call me maybe"},
		{"fail/no-country-code", "0151 23456789"},
		{"fail/empty", ""},
		{"fail/too-long", "+" + strings.Repeat("9", 400)},
		{"fail/control-characters", "+49151\r\n23456789"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csrf, cer := start(t)
			status, body := send(t, csrf, cer, tc.phone)
			if status != http.StatusBadRequest || !strings.Contains(body, "international format") || !strings.Contains(body, `type="tel"`) {
				t.Fatalf("status %d, want 400 and the number asked for again with how to write it\n%s", status, body)
			}
		})
	}

	csrf, cer := start(t)
	status, body := send(t, csrf, cer, "+49 151 23456789")
	if status != http.StatusOK || !strings.Contains(body, "We sent a code to") || !strings.Contains(body, `value="`+cer+`"`) {
		t.Fatalf("ok/number-step: status %d, want 200 and the code page of the same registration\n%s", status, body)
	}
	if strings.Contains(body, "+4915123456789") {
		t.Fatalf("the code page shows the whole number:\n%s", body)
	}
	status, body = send(t, csrf, cer, "not the code")
	if status != http.StatusUnauthorized && status != http.StatusBadRequest {
		t.Fatalf("fail/wrong-code: status %d\n%s", status, body)
	}

	// A script asking for JSON gets the next step as data.
	csrf, cer = start(t)
	resp, body := post(t, b, s.base+"/account/security/add", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "code": {"+49 151 23456789"}},
		"Accept", "application/json")
	var next struct {
		Ceremony string
		Next     map[string]any
	}
	if err := json.Unmarshal([]byte(body), &next); resp.StatusCode != http.StatusOK || err != nil || next.Ceremony != cer || next.Next["kind"] != "code" {
		t.Fatalf("ok/number-step-json: status %d, %v\n%s", resp.StatusCode, err, body)
	}

	// A new registration: the number, then the code from the log.
	csrf, cer = start(t)
	if status, body := send(t, csrf, cer, "+49 151 23456789"); status != http.StatusOK {
		t.Fatalf("number step: %d\n%s", status, body)
	}
	code := lastCode(t, logs, "+4915123456789")
	resp, _ = post(t, b, s.base+"/account/security/add", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "code": {code}, "name": {"Phone"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/account/security?added" {
		t.Fatalf("ok/code-step: status %d to %q", resp.StatusCode, loc)
	}
	creds, _ := s.app.Store.ListCredentials(context.Background(), u.ID)
	if len(creds) != 1 || creds[0].Type != "otp-sms" {
		t.Fatalf("credentials after enrolling: %+v", creds)
	}
}

// lastCode returns the last one-time code the development sender wrote
// to the log for to.
func lastCode(t *testing.T, logs *syncBuffer, to string) string {
	t.Helper()
	code := ""
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct{ To, Code string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.To == to && rec.Code != "" {
			code = rec.Code
		}
	}
	if code == "" {
		t.Fatalf("no code for %s in the log", to)
	}
	return code
}
