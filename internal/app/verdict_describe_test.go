package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// drain forgets what the upstream saw last.
func (r *verdictRig) drain() {
	select {
	case <-r.upstream:
	default:
	}
}

// describe prints an answer: status, the headers that carry the
// decision, where a redirect goes, and what the upstream received.
func (r *verdictRig) describe(resp *http.Response) string {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "status: %d\n", resp.StatusCode)
	if loc := resp.Header.Get("Location"); loc != "" {
		fmt.Fprintf(&b, "location: %s\n", r.normURL(loc))
	}
	if v := resp.Header.Get("Www-Authenticate"); v != "" {
		fmt.Fprintf(&b, "www-authenticate: %s\n", v)
	}
	if v := resp.Header.Get("X-Stepgate-Login"); v != "" {
		fmt.Fprintf(&b, "x-stepgate-login: %s\n", r.normURL(v))
	}
	r.describeIdentity(&b, "header", resp.Header)
	select {
	case up := <-r.upstream:
		b.WriteString("upstream: served\n")
		r.describeIdentity(&b, "upstream", up)
	default:
		// A redirect's body, and auth_request's 401, is a link to where the
		// answer points, printed above.
		if !strings.HasPrefix(string(body), "<a href=") && len(body) > 0 {
			fmt.Fprintf(&b, "body: %s\n", r.summary(resp.Header.Get("Content-Type"), body))
		}
	}
	return b.String()
}

// describeIdentity prints the X-Stepgate-* headers of h.
func (r *verdictRig) describeIdentity(b *strings.Builder, prefix string, h http.Header) {
	var names []string
	for k := range h {
		if strings.HasPrefix(k, "X-Stepgate-") && k != "X-Stepgate-Login" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		v := h.Get(k)
		switch k {
		case "X-Stepgate-Assertion":
			v = r.claimsOf(v)
		case "X-Stepgate-Auth-Time":
			v = r.age(v)
		}
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(b, "%s %s: %s\n", prefix, strings.ToLower(k), v)
	}
}

// summary is what a body says, in one line: a JSON error's fields, or a
// page's title and the first line of its main message.
func (r *verdictRig) summary(contentType string, body []byte) string {
	if strings.Contains(contentType, "json") {
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
			}
			return "json " + strings.Join(parts, " ")
		}
	}
	s := string(body)
	title, alert := between(s, "<title>", "</title>"), between(s, `role="alert">`, "<")
	if title == "" && alert == "" {
		return strings.TrimSpace(s)
	}
	return "page " + title + ": " + html.UnescapeString(alert)
}

// between is the trimmed text of s between the first open and the next
// end, or "".
func between(s, open, end string) string {
	_, rest, ok := strings.Cut(s, open)
	if !ok {
		return ""
	}
	in, _, _ := strings.Cut(rest, end)
	return strings.TrimSpace(in)
}

// claims describes a JWT's claims (the signature is checked elsewhere).
func (r *verdictRig) claims(t *testing.T, jwt string) string {
	t.Helper()
	s := r.claimsOf(jwt)
	if s == "" {
		t.Fatalf("not a JWT: %q", jwt)
	}
	return s
}

// claimsOf prints the claims that carry the decision, with times as
// ages before the clock and random values named, not printed.
func (r *verdictRig) claimsOf(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		v := m[k]
		switch k {
		case "sub", "jti", "sid", "nonce", "at_hash", "c_hash", "exp", "iat", "nbf", "iss", "client_id", "scope":
			continue
		case "auth_time", "proof_time":
			out = append(out, k+"="+r.age(fmt.Sprint(v)))
			continue
		case "prf":
			out = append(out, k+"="+r.proofs(v))
			continue
		}
		b, _ := json.Marshal(v)
		out = append(out, k+"="+strings.ReplaceAll(string(b), r.upstreamURL, "{upstream}"))
	}
	return strings.Join(out, " ")
}

// proofs prints a token's prf claim with each proof's time as its age.
func (r *verdictRig) proofs(v any) string {
	list, _ := v.([]any)
	parts := make([]string, 0, len(list))
	for _, p := range list {
		m, _ := p.(map[string]any)
		if t, ok := m["t"]; ok {
			m["t"] = r.age(fmt.Sprint(t))
		}
		b, _ := json.Marshal(m)
		parts = append(parts, string(b))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// age prints a Unix time (seconds) as its age before the clock, in
// whole minutes: the proofs are made minutes apart.
func (r *verdictRig) age(unix string) string {
	var sec float64
	if _, err := fmt.Sscan(unix, &sec); err != nil {
		return unix
	}
	d := r.clock.Sub(time.Unix(int64(sec), 0)).Round(time.Minute)
	return "clock-" + d.String()
}

// verdictHosts name the origins an answer may point to.
var verdictHosts = map[string]string{
	verdictIssuer: "{stepgate}", "http://" + verdictBank: "{bank}", "http://" + verdictFA: "{fa}", "http://127.0.0.1:9": "{client}",
}

// normURL prints a URL with its origin named and its query sorted and
// decoded, random values replaced, a return_to printed the same way in
// brackets.
func (r *verdictRig) normURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	out := u.Path
	if u.Host != "" {
		origin := u.Scheme + "://" + u.Host
		if name, ok := verdictHosts[origin]; ok {
			origin = name
		}
		out = origin + u.Path
	}
	q := u.Query()
	if len(q) == 0 {
		return out
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := strings.Join(q[k], ",")
		switch {
		case slices.Contains([]string{"b", "code", "kept", "ticket", "flow"}, k):
			v = "{random}"
		case k == "iss" || strings.Contains(v, "?"):
			v = "[" + r.normURL(v) + "]"
		}
		parts = append(parts, k+"="+v)
	}
	return out + "?" + strings.Join(parts, "&")
}

// signIns are the sign-in log entries about user id, oldest first, once
// everything queued is written.
func (r *verdictRig) signIns(t *testing.T, userID string) []audit.SignIn {
	t.Helper()
	ctx := context.Background()
	if err := r.a.SignIns.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var out []audit.SignIn
	err := audit.WalkSignIns(ctx, r.a.Store, store.SignInQuery{UserID: userID}, 0, func(row store.SignIn) error {
		e, err := audit.Decode(row)
		out = append(out, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(out)
	return out
}

// logged runs do and describes the sign-in log entries about user id it
// wrote, one line each, with the facts and reasons the log keeps.
func (r *verdictRig) logged(t *testing.T, userID string, do func() string) string {
	t.Helper()
	before := len(r.signIns(t, userID))
	out := do()
	entries := r.signIns(t, userID)[before:]
	if len(entries) == 0 {
		return out + "log: none\n"
	}
	for _, e := range entries {
		out += "log: " + describeSignIn(e) + "\n"
	}
	return out
}

// describeSignIn prints what a sign-in log entry says about a decision:
// where, the outcome and its reason, the facts the policies saw, and
// each policy that applied.
func describeSignIn(e audit.SignIn) string {
	parts := []string{"source=" + e.Source, "decision=" + e.Decision}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("reason", string(e.Reason))
	add("app", e.App)
	add("contexts", strings.Join(e.Contexts, ","))
	add("country", e.Country)
	add("platform", e.Platform)
	add("risk", e.RiskLevel)
	add("prompted", strings.Join(e.MethodsPrompted, ","))
	add("completed", strings.Join(e.MethodsCompleted, ","))
	for _, p := range e.Policies {
		if p.Result == policy.ResultNotApplied || p.Result == policy.ResultReportOnlyNotApplied {
			continue
		}
		v := string(p.Result)
		if p.Reason != "" {
			v += "/" + string(p.Reason)
		}
		add("policy:"+p.Policy, v)
	}
	return strings.Join(parts, " ")
}
