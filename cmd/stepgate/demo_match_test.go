//go:build unix

package main

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDemoRuleVariants: signed in to the demo bank with alice's password
// alone, every other way of writing a transfer, an admin page or the
// customer list is refused by the gateway or asks for the rule's proof;
// none reaches the bank under the default rule. Not parallel: it changes
// the working directory, as the walk-through does.
func TestDemoRuleVariants(t *testing.T) {
	ln, _ := startTestDemo(t)
	port := itoa(ln.Addr().(*net.TCPAddr).Port)
	base, bank := "http://localhost:"+port, "http://bank.localhost:"+port

	// Sign in as alice with her password, through the bank.
	b := demoBrowser(ln.Addr().String())
	resp, body := demoDo(t, b, "GET", bank+"/", nil)
	for range 8 {
		if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
			break
		}
		loc, _ := resp.Location()
		if strings.HasPrefix(loc.String(), base+"/account/register-offer") {
			resp, body = demoNotNow(t, b, base, loc)
			continue
		}
		if !strings.HasPrefix(loc.String(), base+"/login") {
			resp, body = demoDo(t, b, "GET", loc.String(), nil)
			continue
		}
		_, page := demoDo(t, b, "GET", loc.String(), nil)
		csrf := demoCSRFRe.FindStringSubmatch(page)
		if csrf == nil {
			t.Fatalf("the sign-in page has no form:\n%s", page)
		}
		resp, body = demoDo(t, b, "POST", base+"/login", url.Values{"csrf_token": {csrf[1]},
			"username": {"alice"}, "password": {"alice-demo-password"}, "return_to": {loc.Query().Get("return_to")}})
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Current account") {
		t.Fatalf("alice's accounts page: %d\n%s", resp.StatusCode, body)
	}
	_, form := demoDo(t, b, "GET", bank+"/transfers/new", nil)
	token := bankFormRe.FindStringSubmatch(form)
	if token == nil {
		t.Fatalf("the transfer form has no token:\n%s", form)
	}
	transfer := url.Values{"amount": {"4242.00"}, "to": {"DE89 3704 0044 0532 0130 00"}, "csrf": {token[1]}}
	sameSite := []string{"Origin", bank, "Sec-Fetch-Site", "same-origin"}

	for _, v := range []struct{ name, method, path string }{
		{"transfer-slash", "POST", "/transfers/"},
		{"transfer-parameter", "POST", "/transfers;x=1"},
		{"transfer-format", "POST", "/transfers.json"},
		{"transfer-long-s", "POST", "/tran%C5%BFfers"},
		{"transfer-lower-method", "post", "/transfers"},
		{"transfer-mixed-method", "Post", "/transfers"},
		{"transfer-trailing-space", "POST", "/transfers%20"},
		{"admin-jsessionid", "GET", "/admin;jsessionid=x"},
		{"admin-dot-dot-parameter", "GET", "/x/..;/admin/"},
		{"admin-dotless-i", "GET", "/adm%C4%B1n/"},
		{"admin-format", "GET", "/admin.json"},
		{"customers-format", "GET", "/customers.json"},
		{"customers-head", "HEAD", "/customers/"},
	} {
		t.Run("fail/"+v.name, func(t *testing.T) {
			var f url.Values
			if v.method != "GET" && v.method != "HEAD" {
				f = transfer
			}
			resp, body := demoDo(t, b, v.method, bank+v.path, f, sameSite...)
			loc := resp.Header.Get("Location")
			switch {
			case resp.StatusCode == http.StatusBadRequest:
			case resp.StatusCode == http.StatusSeeOther && strings.Contains(loc, "stepup="):
			case resp.StatusCode == http.StatusForbidden && !strings.Contains(body, "Current account"):
				// a proof alice has no method for (the admin passkey)
			default:
				t.Errorf("%s %s: %d %s, want 400, the step-up or a refusal\n%s", v.method, v.path, resp.StatusCode, loc, body)
			}
		})
	}
}
