package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// newSignInAPI serves a sign-in log of 30 entries: alice's on even
// minutes, bob's on odd ones; every third applied the "mfa" policy.
func newSignInAPI(t *testing.T) *api.API {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "stepgate.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := audit.NewSignInLog(st, audit.SignInLogOptions{})
	for i := range 30 {
		e := audit.SignIn{Time: now.Add(time.Duration(i) * time.Minute), Source: "oidc", App: "payroll", Decision: "allow",
			UserID: []string{"u1", "u2"}[i%2], Reason: reason.Code(strings.Repeat("x", i))}
		if i%3 == 0 {
			e.Decision = "challenge"
			e.Policies = []policy.PolicyResult{{Policy: "mfa", Result: policy.ResultApplied}}
		}
		if err := log.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return api.New(api.Deps{
		Users:   fakeUsers{"alice": {ID: "u1", Username: "alice"}, "bob": {ID: "u2", Username: "bob"}},
		Access:  &access.Builder{},
		Token:   token,
		SignIns: st,
	})
}

func getSignIns(t *testing.T, h *api.API, query, peer string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/api/v1/signins?"+query, nil)
	req.RemoteAddr, req.Host = peer, "localhost:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestSignInsQuery(t *testing.T) {
	t.Parallel()
	h := newSignInAPI(t)
	type page struct {
		SignIns    []audit.SignIn `json:"signins"`
		NextCursor string         `json:"next_cursor"`
	}
	fetch := func(query string) page {
		t.Helper()
		code, body := getSignIns(t, h, query, "127.0.0.1:5000")
		if code != 200 {
			t.Fatalf("GET ?%s: %d %s", query, code, body)
		}
		var p page
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Pages of 7 with the cursor walk alice's 15 entries, newest first.
	var seen []int
	query := "user=alice&limit=7"
	for {
		p := fetch(query)
		for _, e := range p.SignIns {
			if e.UserID != "u1" {
				t.Fatalf("user=alice returned %s's entry", e.UserID)
			}
			seen = append(seen, len(e.Reason))
		}
		if p.NextCursor == "" {
			break
		}
		query = "user=alice&limit=7&cursor=" + p.NextCursor
	}
	if len(seen) != 15 || seen[0] != 28 || seen[14] != 0 {
		t.Fatalf("alice's entries by minute: %v", seen)
	}

	if p := fetch("policy=mfa&decision=challenge&user=bob"); len(p.SignIns) != 5 {
		t.Fatalf("bob's mfa challenges: %d, want 5", len(p.SignIns))
	}
	since, until := now.Add(10*time.Minute).Format(time.RFC3339), now.Add(20*time.Minute).Format(time.RFC3339)
	if p := fetch("since=" + since + "&until=" + until); len(p.SignIns) != 10 || p.NextCursor != "" {
		t.Fatalf("a ten-minute window: %d entries, cursor %q", len(p.SignIns), p.NextCursor)
	}

	// format=jsonl exports everything that matches, past one page.
	code, body := getSignIns(t, h, "format=jsonl&app=payroll", "127.0.0.1:5000")
	lines := 0
	for sc := bufio.NewScanner(strings.NewReader(body)); sc.Scan(); lines++ {
		var e audit.SignIn
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.App != "payroll" {
			t.Fatalf("export line %d: %v %q", lines, err, sc.Text())
		}
	}
	if code != 200 || lines != 30 {
		t.Fatalf("export: %d, %d lines, want 30", code, lines)
	}
}

func TestSignInsRefusesBadRequests(t *testing.T) {
	t.Parallel()
	h := newSignInAPI(t)
	for _, tc := range []struct{ query, peer, want string }{
		{"user=mallory", "127.0.0.1:5000", `user there is no user named \"mallory\"`},
		{"since=yesterday", "127.0.0.1:5000", "since must be an RFC 3339 time"},
		{"limit=5000", "127.0.0.1:5000", "limit must be a whole number from 1 to 1000"},
		{"cursor=-3", "127.0.0.1:5000", "cursor must be the next_cursor"},
		{"format=csv", "127.0.0.1:5000", "format must be jsonl"},
		{"", "203.0.113.5:5000", "api.token"}, // the log is not for the world
	} {
		code, body := getSignIns(t, h, tc.query, tc.peer)
		if code < 400 || !strings.Contains(body, tc.want) {
			t.Errorf("?%s from %s: %d %s; want an error saying %q", tc.query, tc.peer, code, body, tc.want)
		}
	}
	req := httptest.NewRequest("POST", "/api/v1/signins", strings.NewReader(`{}`))
	req.RemoteAddr, req.Host = "127.0.0.1:5000", "localhost:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 405 {
		t.Fatalf("POST /api/v1/signins: %d, want 405", rec.Code)
	}
}

// TestSignInsDatabaseFilter: database= selects the statements decided on
// a database (not its OIDC client's sign-ins), statement_class= one class,
// and an unknown class is refused with the valid ones.
func TestSignInsDatabaseFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "stepgate.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := audit.NewSignInLog(st, audit.SignInLogOptions{})
	for i, e := range []audit.SignIn{
		{Source: "oidc", App: "bank", Decision: "allow"},
		{Source: "database", App: "bank", Decision: "block", Statement: &audit.Statement{Command: "DROP TABLE", Class: "ddl"}},
		{Source: "database", App: "bank", Decision: "allow", Statement: &audit.Statement{Command: "SELECT", Class: "read"}},
		{Source: "database", App: "ledger", Decision: "block", Statement: &audit.Statement{Command: "DROP TABLE", Class: "ddl"}},
	} {
		e.Time, e.UserID = now.Add(time.Duration(i)*time.Minute), "u1"
		if err := log.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h := api.New(api.Deps{Users: fakeUsers{}, Access: &access.Builder{}, Token: token, SignIns: st})
	for _, tc := range []struct {
		query string
		want  []string // app:command of the entries, newest first
	}{
		{"database=bank", []string{"bank:SELECT", "bank:DROP TABLE"}},
		{"database=bank&statement_class=ddl", []string{"bank:DROP TABLE"}},
		{"statement_class=ddl", []string{"ledger:DROP TABLE", "bank:DROP TABLE"}},
		{"app=bank", []string{"bank:SELECT", "bank:DROP TABLE", "bank:-"}},
	} {
		code, body := getSignIns(t, h, tc.query, "127.0.0.1:5000")
		var p struct {
			SignIns []audit.SignIn `json:"signins"`
		}
		if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
			t.Fatalf("?%s: %d %s", tc.query, code, body)
		}
		var got []string
		for _, e := range p.SignIns {
			cmd := "-"
			if e.Statement != nil {
				cmd = e.Statement.Command
			}
			got = append(got, e.App+":"+cmd)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("?%s: %v, want %v", tc.query, got, tc.want)
		}
	}
	code, body := getSignIns(t, h, "statement_class=dml", "127.0.0.1:5000")
	if code != 400 || !strings.Contains(body, "statement_class must be one of session, read, utility, write, ddl, privilege, unknown") {
		t.Errorf("an unknown class: %d %s", code, body)
	}
}
