package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var (
	pushNumberRe   = regexp.MustCompile(`id="push-number">(\d+)<`)
	pushApprovalRe = regexp.MustCompile(`data-approval="([^"]+)"`)
)

// TestPushApprovalWithNumberMatching registers a second browser as a
// push device, then steps up to MFA in the first browser by choosing the
// shown number on the device. A wrong number is final for that request.
func TestPushApprovalWithNumberMatching(t *testing.T) {
	s := startOIDC(t, nil)
	device, signIn := browser(t), browser(t)

	// The device: a signed-in browser that registers for push.
	s.signIn(t, device, "/account")
	_, body := get(t, device, s.base+"/account/security/add?method=push")
	csrf, cer := formOf(t, body)
	resp, _ := post(t, device, s.base+"/account/security/add", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "name": {"Phone"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("registering the device: %d", resp.StatusCode)
	}

	// startPush opens a step-up with push in the signing-in browser and
	// returns the form, the number shown and the approval id.
	startPush := func() (csrf, ceremony, number, approval string) {
		t.Helper()
		_, body := get(t, signIn, s.base+"/stepup?method=push&return_to=/account")
		n, a := pushNumberRe.FindStringSubmatch(body), pushApprovalRe.FindStringSubmatch(body)
		if n == nil || a == nil {
			t.Fatalf("the step-up page shows no number to match:\n%s", body)
		}
		csrf, ceremony = formOf(t, body)
		return csrf, ceremony, n[1], a[1]
	}
	answer := func(approval string, choice any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"approval": approval, "choice": choice})
		req, _ := http.NewRequest(http.MethodPost, s.base+"/account/push/answer", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := device.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	// pendingChoices lists the numbers the device is offered.
	pendingChoices := func(approval string) []int {
		t.Helper()
		_, body := get(t, device, s.base+"/account/push/pending")
		var out struct {
			Pending []struct {
				Approval string `json:"approval"`
				Choices  []int  `json:"choices"`
			} `json:"pending"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("pending: %v\n%s", err, body)
		}
		for _, p := range out.Pending {
			if p.Approval == approval {
				return p.Choices
			}
		}
		t.Fatalf("the device does not see approval %s: %s", approval, body)
		return nil
	}

	s.signIn(t, signIn, "/account")
	csrf, cer, number, approval := startPush()
	n, _ := strconv.Atoi(number)
	if choices := pendingChoices(approval); len(choices) != 3 || !slices.Contains(choices, n) {
		t.Fatalf("the device is offered %v, which must be three numbers including %d", choices, n)
	}
	// Before the device answers, the sign-in cannot complete.
	resp, _ = post(t, signIn, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "return_to": {"/account"}})
	if resp.StatusCode == http.StatusSeeOther {
		t.Fatal("the step-up completed before the device answered")
	}

	// A wrong number fails the request for good.
	csrf, cer, number, approval = startPush()
	n, _ = strconv.Atoi(number)
	wrong := slices.DeleteFunc(pendingChoices(approval), func(c int) bool { return c == n })[0]
	if st, out := answer(approval, wrong); st != http.StatusOK || !strings.Contains(out, "wrong-number") {
		t.Fatalf("wrong number: %d %s", st, out)
	}
	if st, _ := answer(approval, n); st != http.StatusConflict {
		t.Fatalf("the right number after a wrong one: %d, want 409", st)
	}
	resp, _ = post(t, signIn, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("step-up after a wrong number: %d, want 401", resp.StatusCode)
	}

	// The right number approves exactly this request.
	csrf, cer, number, approval = startPush()
	n, _ = strconv.Atoi(number)
	if st, out := answer(approval, n); st != http.StatusOK || !strings.Contains(out, "approved") {
		t.Fatalf("right number: %d %s", st, out)
	}
	resp, _ = post(t, signIn, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("step-up after approval: %d, want 303", resp.StatusCode)
	}
	_, body = get(t, signIn, s.base+"/account")
	if !strings.Contains(body, "<td>push</td>") || !strings.Contains(body, "swk") {
		t.Errorf("the session does not show the push proof:\n%s", body)
	}

	// The signing-in browser's session cookie is not a device: it cannot
	// answer approvals.
	_, _, _, approval = startPush()
	b, _ := json.Marshal(map[string]any{"approval": approval, "choice": 10})
	req, _ := http.NewRequest(http.MethodPost, s.base+"/account/push/answer", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := signIn.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("a browser that is not a registered device answered an approval")
	}
}

// TestPushDevicePageInTheLayout opens the device page through the real
// wiring: the push method renders its part, the pages' layout frames it.
// Before, the method executed the layout itself and missed a field it
// reads, so the page answered 500.
func TestPushDevicePageInTheLayout(t *testing.T) {
	s := startOIDC(t, nil)
	device := browser(t)
	s.signIn(t, device, "/account")
	_, body := get(t, device, s.base+"/account/security/add?method=push")
	csrf, cer := formOf(t, body)
	if resp, _ := post(t, device, s.base+"/account/security/add", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "name": {"Phone"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("registering the device: %d", resp.StatusCode)
	}
	resp, page := get(t, device, s.base+"/account/push")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("device page: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{"<title>Sign-in approvals · Stepgate</title>", `href="/static/style.css"`, `id="push-list"`, "<strong>Phone</strong>", `src="/static/push.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("device page lacks %s:\n%s", want, page)
		}
	}
}

// TestPushNotMeRaisesUserRisk: a user who answers a push request "not-me"
// says someone else holds their password. Their user risk becomes high at
// once, which ends their sessions, so the thief's session is gone too.
func TestPushNotMeRaisesUserRisk(t *testing.T) {
	s := startOIDC(t, nil)
	device, thief := browser(t), browser(t)
	s.signIn(t, device, "/account")
	_, body := get(t, device, s.base+"/account/security/add?method=push")
	csrf, cer := formOf(t, body)
	if resp, _ := post(t, device, s.base+"/account/security/add", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "name": {"Phone"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("registering the device: %d", resp.StatusCode)
	}

	s.signIn(t, thief, "/account")
	_, body = get(t, thief, s.base+"/stepup?method=push&return_to=/account")
	a := pushApprovalRe.FindStringSubmatch(body)
	if a == nil {
		t.Fatalf("the step-up page shows no approval:\n%s", body)
	}
	ctx := context.Background()
	if r := s.app.Risk.UserRisk(ctx, s.user.ID); r != "" {
		t.Fatalf("user risk before the report: %q, want none", r)
	}
	b, _ := json.Marshal(map[string]any{"approval": a[1], "choice": "not-me"})
	req, _ := http.NewRequest(http.MethodPost, s.base+"/account/push/answer", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := device.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), "reported") {
		t.Fatalf("not-me: %d %s", resp.StatusCode, out)
	}
	if r := s.app.Risk.UserRisk(ctx, s.user.ID); r != "high" {
		t.Errorf("user risk after not-me: %q, want high", r)
	}
	if resp, _ := get(t, thief, s.base+"/account"); resp.StatusCode == http.StatusOK {
		t.Errorf("the thief's session survived the report: %d", resp.StatusCode)
	}
}
