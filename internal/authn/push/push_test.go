package push

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// syncBuffer is a log sink safe for the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type fixture struct {
	m        *Method
	st       store.Store
	c        *clock
	sessions *session.Manager
	srv      *httptest.Server
	log      *syncBuffer

	mu     sync.Mutex // guards frauds
	frauds []string
}

// account is a user with a registered device and a signed-in session.
type account struct {
	u       store.User
	device  *http.Cookie
	session *http.Cookie
}

// testFrame stands in for the server's layout (package web's): a bare
// page around the method's content, so the tests read what it rendered.
type testFrame struct{}

func (testFrame) Render(w http.ResponseWriter, status int, title string, content template.HTML) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := io.WriteString(w, "<!doctype html><title>"+template.HTMLEscapeString(title)+"</title>"+string(content))
	return err
}

func setup(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{c: &clock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}, log: &syncBuffer{}}
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/t.db", sqlite.Options{Now: f.c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.sessions = session.NewManager(st, session.Config{CookieName: "sg", IdleTimeout: time.Hour, Lifetime: 8 * time.Hour}, f.c.now)
	f.m, err = New(Options{
		Creds: st, KV: st, Frame: testFrame{}, Now: f.c.now, PollInterval: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(f.log, nil)),
		SessionUser: func(r *http.Request) (string, error) {
			s, err := f.sessions.Load(r.Context(), r)
			return s.UserID, err
		},
		OnFraudReport: func(_ context.Context, userID string) {
			f.mu.Lock()
			f.frauds = append(f.frauds, userID)
			f.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.m.Mount(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) account(t testing.TB, id string) account {
	t.Helper()
	ctx := context.Background()
	u, err := f.st.CreateUser(ctx, store.User{ID: id, Username: id})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := f.m.BeginEnroll(ctx, u, id+"'s phone")
	if err != nil || ch.Show["kind"] != "push-register" {
		t.Fatalf("BeginEnroll = %v, %v", ch.Show, err)
	}
	e, err := f.m.FinishEnroll(ctx, u, ch.State, authn.Response{})
	if err != nil {
		t.Fatal(err)
	}
	ck, ok := e.Show["set_cookie"].(*http.Cookie)
	if !ok || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge < 300*24*3600 {
		t.Fatalf("device cookie = %+v", e.Show["set_cookie"])
	}
	if bytes.Contains(e.Credential.Data, []byte(strings.SplitN(ck.Value, ".", 2)[1])) {
		t.Fatal("the device secret is stored in plaintext")
	}
	token, _, err := f.sessions.Start(ctx, httptest.NewRequest("GET", "/", nil), u.ID, store.AuthEvent{Method: "password", Time: f.c.now(), AMR: []string{"pwd"}}, session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return account{u: u, device: ck, session: &http.Cookie{Name: f.sessions.CookieName(), Value: token}}
}

func (f *fixture) creds(t testing.TB, u store.User) []store.Credential {
	t.Helper()
	cs, err := f.st.ListCredentials(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (f *fixture) begin(t testing.TB, a account) (authn.Challenge, string, int) {
	t.Helper()
	ch, err := f.m.BeginVerify(context.Background(), a.u, f.creds(t, a.u))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Show["kind"] != "push" {
		t.Fatalf("shows %v", ch.Show)
	}
	return ch, ch.Show["approval"].(string), ch.Show["number"].(int)
}

func (f *fixture) verify(t testing.TB, a account, ch authn.Challenge) (authn.Proof, error) {
	t.Helper()
	return f.m.Verify(context.Background(), a.u, f.creds(t, a.u), ch.State, authn.Response{})
}

// do sends a request with cookie and returns the status and decoded body.
func (f *fixture) do(t testing.TB, method, path string, cookie *http.Cookie, body any, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (f *fixture) answer(t testing.TB, a account, approval string, choice any) (int, map[string]any) {
	t.Helper()
	return f.do(t, http.MethodPost, AnswerPath, a.device, map[string]any{"approval": approval, "choice": choice}, nil)
}

func (f *fixture) status(t testing.TB, a account, approval string) string {
	t.Helper()
	code, body := f.do(t, http.MethodGet, StatusPath+"?approval="+approval, a.session, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("status route answered %d %v", code, body)
	}
	return body["status"].(string)
}

func TestApprove(t *testing.T) {
	t.Parallel()
	f := setup(t)
	alice := f.account(t, "alice")
	ch, id, n := f.begin(t, alice)
	if _, err := f.verify(t, alice, ch); !errors.Is(err, authn.ErrPending) {
		t.Fatalf("before the answer: %v, want ErrPending", err)
	}
	if s := f.status(t, alice, id); s != "pending" {
		t.Fatalf("status = %s", s)
	}
	code, body := f.do(t, http.MethodGet, PendingPath, alice.device, nil, nil)
	pending, _ := body["pending"].([]any)
	if code != http.StatusOK || len(pending) != 1 {
		t.Fatalf("pending = %d %v", code, body)
	}
	p := pending[0].(map[string]any)
	var choices []int
	for _, c := range p["choices"].([]any) {
		choices = append(choices, int(c.(float64)))
	}
	if p["approval"] != id || len(choices) != 3 || !slices.Contains(choices, n) {
		t.Fatalf("the device sees %v; want the approval with %d among three choices", p, n)
	}
	if _, leaks := p["number"]; leaks {
		t.Fatal("the device is told which number is right")
	}
	if code, body := f.answer(t, alice, id, n); code != http.StatusOK || body["result"] != "approved" {
		t.Fatalf("answer = %d %v", code, body)
	}
	if s := f.status(t, alice, id); s != "answered" {
		t.Fatalf("status = %s", s)
	}
	proof, err := f.verify(t, alice, ch)
	if err != nil {
		t.Fatal(err)
	}
	if proof.Method != Name || !slices.Equal(proof.AMR, []string{"swk"}) || proof.PhishingResistant || proof.CredentialID != f.creds(t, alice.u)[0].ID {
		t.Fatalf("proof = %+v", proof)
	}
	if _, err := f.verify(t, alice, ch); !errors.Is(err, authn.ErrReplay) {
		t.Fatalf("fail/approval-used-twice: %v", err)
	}
}

func TestAttacks(t *testing.T) {
	t.Parallel()
	t.Run("fail/wrong-number-is-final", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice := f.account(t, "alice")
		ch, id, n := f.begin(t, alice)
		wrong := 10
		if wrong == n {
			wrong = 11
		}
		if code, body := f.answer(t, alice, id, wrong); code != http.StatusOK || body["result"] != "wrong-number" {
			t.Fatalf("answer = %d %v", code, body)
		}
		if code, _ := f.answer(t, alice, id, n); code != http.StatusConflict {
			t.Fatalf("a second answer after a wrong number got %d, want 409", code)
		}
		if _, err := f.verify(t, alice, ch); !errors.Is(err, authn.ErrInvalid) {
			t.Fatalf("Verify = %v, want ErrInvalid", err)
		}
		if _, err := f.verify(t, alice, ch); !errors.Is(err, authn.ErrInvalid) {
			t.Fatalf("Verify again = %v, want ErrInvalid", err)
		}
	})
	t.Run("fail/wrong-numbers-throttle-the-user", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice := f.account(t, "alice")
		for range 6 {
			_, id, n := f.begin(t, alice)
			f.answer(t, alice, id, 10+(n-10+1)%90)
		}
		if _, err := f.m.BeginVerify(context.Background(), alice.u, f.creds(t, alice.u)); !errors.Is(err, authn.ErrThrottled) {
			t.Fatalf("after 6 wrong numbers: %v, want ErrThrottled", err)
		}
	})
	t.Run("fail/another-users-device", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice, bob := f.account(t, "alice"), f.account(t, "bob")
		ch, id, n := f.begin(t, alice)
		if code, _ := f.answer(t, bob, id, n); code != http.StatusNotFound {
			t.Fatalf("bob's device answered alice's approval: %d", code)
		}
		if _, body := f.do(t, http.MethodGet, PendingPath, bob.device, nil, nil); len(body["pending"].([]any)) != 0 {
			t.Fatalf("bob's device lists alice's approvals: %v", body)
		}
		if _, err := f.verify(t, alice, ch); !errors.Is(err, authn.ErrPending) {
			t.Fatalf("alice's approval after bob's attempt: %v", err)
		}
		if s := f.status(t, bob, id); s != "expired" {
			t.Fatalf("bob's session reads alice's approval status: %s", s)
		}
		// Nor can bob's sign-in collect alice's approval.
		f.answer(t, alice, id, n)
		if _, err := f.m.Verify(context.Background(), bob.u, f.creds(t, bob.u), ch.State, authn.Response{}); !errors.Is(err, authn.ErrNoCeremony) {
			t.Fatalf("bob collected alice's approval: %v", err)
		}
	})
	t.Run("fail/approval-id-with-a-path", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice, bob := f.account(t, "alice"), f.account(t, "bob")
		ch, id, n := f.begin(t, alice)
		// Ids that would name alice's approval were keys paths: each is
		// refused as no key of bob's, before the store is asked.
		for _, forged := range []string{"../" + alice.u.ID + "/" + id, alice.u.ID + "/" + id, id + "/", "/" + id, id + "\x00"} {
			if code, _ := f.answer(t, bob, forged, n); code != http.StatusNotFound {
				t.Fatalf("bob's device answered %q: %d, want 404", forged, code)
			}
			code, body := f.do(t, http.MethodGet, StatusPath+"?approval="+url.QueryEscape(forged), bob.session, nil, nil)
			if code != http.StatusOK || body["status"] != "expired" {
				t.Fatalf("bob's session reads %q: %d %v", forged, code, body)
			}
		}
		if _, err := f.verify(t, alice, ch); !errors.Is(err, authn.ErrPending) {
			t.Fatalf("alice's approval after the forged ids: %v, want still pending", err)
		}
	})
	t.Run("fail/session-cookie-is-not-a-device", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice := f.account(t, "alice")
		_, id, n := f.begin(t, alice)
		if code, _ := f.do(t, http.MethodPost, AnswerPath, alice.session, map[string]any{"approval": id, "choice": n}, nil); code != http.StatusUnauthorized {
			t.Fatalf("the sign-in session answered its own approval: %d", code)
		}
		forged := *alice.device
		forged.Value = strings.SplitN(forged.Value, ".", 2)[0] + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		if code, _ := f.answer(t, account{device: &forged}, id, n); code != http.StatusUnauthorized {
			t.Fatalf("a forged device secret answered: %d", code)
		}
	})
	t.Run("fail/cross-site-post", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice := f.account(t, "alice")
		_, id, n := f.begin(t, alice)
		code, _ := f.do(t, http.MethodPost, AnswerPath, alice.device, map[string]any{"approval": id, "choice": n}, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if code != http.StatusForbidden {
			t.Fatalf("a cross-site answer got %d, want 403", code)
		}
		code, _ = f.do(t, http.MethodPost, AnswerPath, alice.device, map[string]any{"approval": id, "choice": n}, map[string]string{"Content-Type": "text/plain"})
		if code != http.StatusUnsupportedMediaType {
			t.Fatalf("a text/plain answer (what a cross-site form can send) got %d, want 415", code)
		}
	})
	t.Run("fail/expired", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice := f.account(t, "alice")
		ch, id, n := f.begin(t, alice)
		f.c.add(ApprovalTTL)
		if code, _ := f.answer(t, alice, id, n); code != http.StatusNotFound {
			t.Fatalf("an expired approval was answered: %d", code)
		}
		if _, err := f.verify(t, alice, ch); !errors.Is(err, authn.ErrNoCeremony) {
			t.Fatalf("Verify = %v", err)
		}
		if s := f.status(t, alice, id); s != "expired" {
			t.Fatalf("status = %s", s)
		}
	})
	t.Run("fail/prompt-flood", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice := f.account(t, "alice")
		for range MaxPending {
			f.begin(t, alice)
		}
		if _, err := f.m.BeginVerify(context.Background(), alice.u, f.creds(t, alice.u)); !errors.Is(err, authn.ErrThrottled) {
			t.Fatalf("approval %d: %v, want ErrThrottled", MaxPending+1, err)
		}
	})
	t.Run("fail/status-without-session", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice := f.account(t, "alice")
		_, id, _ := f.begin(t, alice)
		if code, _ := f.do(t, http.MethodGet, StatusPath+"?approval="+id, alice.device, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("status without a session: %d", code)
		}
	})
	t.Run("fail/device-removed", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		alice := f.account(t, "alice")
		ch, id, n := f.begin(t, alice)
		f.answer(t, alice, id, n)
		if _, err := f.m.Verify(context.Background(), alice.u, nil, ch.State, authn.Response{}); !errors.Is(err, authn.ErrNotEnrolled) {
			t.Fatalf("an approval from a removed device counted: %v", err)
		}
	})
}

func TestDenyAndNotMe(t *testing.T) {
	t.Parallel()
	f := setup(t)
	alice := f.account(t, "alice")
	ch, id, _ := f.begin(t, alice)
	if code, body := f.answer(t, alice, id, "deny"); code != http.StatusOK || body["result"] != "denied" {
		t.Fatalf("deny = %d %v", code, body)
	}
	if _, err := f.verify(t, alice, ch); !errors.Is(err, authn.ErrDenied) {
		t.Fatalf("after deny: %v", err)
	}
	if reports, _ := f.m.FraudReports(context.Background(), alice.u.ID); len(reports) != 0 {
		t.Fatalf("a plain deny filed a fraud report: %v", reports)
	}

	ch, id, _ = f.begin(t, alice)
	if code, body := f.answer(t, alice, id, "not-me"); code != http.StatusOK || body["result"] != "reported" {
		t.Fatalf("not-me = %d %v", code, body)
	}
	if _, err := f.verify(t, alice, ch); !errors.Is(err, authn.ErrDenied) {
		t.Fatalf("after not-me: %v", err)
	}
	reports, err := f.m.FraudReports(context.Background(), alice.u.ID)
	if err != nil || len(reports) != 1 || reports[0].ApprovalID != id || reports[0].UserID != alice.u.ID || reports[0].DeviceID == "" {
		t.Fatalf("fraud reports = %+v, %v", reports, err)
	}
	f.mu.Lock()
	frauds := slices.Clone(f.frauds)
	f.mu.Unlock()
	if !slices.Equal(frauds, []string{alice.u.ID}) {
		t.Fatalf("OnFraudReport calls = %v", frauds)
	}
	if out := f.log.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "fraud") {
		t.Fatalf("no warning logged:\n%s", out)
	}

	_, id, _ = f.begin(t, alice)
	if code, _ := f.answer(t, alice, id, "maybe"); code != http.StatusBadRequest {
		t.Fatalf("an unknown choice got %d", code)
	}
}

func TestConcurrentCollect(t *testing.T) {
	t.Parallel()
	f := setup(t)
	alice := f.account(t, "alice")
	ch, id, n := f.begin(t, alice)
	f.answer(t, alice, id, n)
	creds := f.creds(t, alice.u)
	results := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := f.m.Verify(context.Background(), alice.u, creds, ch.State, authn.Response{})
			results <- err
		}()
	}
	ok := 0
	for range 8 {
		if <-results == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("one approval gave %d proofs, want 1", ok)
	}
}

func TestStream(t *testing.T) {
	t.Parallel()
	f := setup(t)
	alice := f.account(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+StreamPath, nil)
	req.AddCookie(alice.device)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("stream = %d %s", resp.StatusCode, ct)
	}
	events := bufio.NewScanner(resp.Body)
	next := func() string {
		t.Helper()
		for events.Scan() {
			if data, ok := strings.CutPrefix(events.Text(), "data: "); ok {
				return data
			}
		}
		t.Fatalf("stream ended: %v", events.Err())
		return ""
	}
	if first := next(); first != `{"pending":[]}` {
		t.Fatalf("first event = %s", first)
	}
	_, id, _ := f.begin(t, alice)
	if ev := next(); !strings.Contains(ev, fmt.Sprintf("%q", id)) {
		t.Fatalf("the new approval did not reach the stream: %s", ev)
	}

	req, _ = http.NewRequest(http.MethodGet, f.srv.URL+StreamPath, nil)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a stream without a device cookie: %d", resp2.StatusCode)
	}
}

func TestDevicePage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	alice := f.account(t, "alice")
	get := func(c *http.Cookie) string {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+DevicePath, nil)
		if c != nil {
			req.AddCookie(c)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("device page: %d", resp.StatusCode)
		}
		return string(b)
	}
	page := get(alice.device)
	for _, want := range []string{"alice&#39;s phone", `src="/static/push.js"`, `data-answer="/account/push/answer"`, `id="push-list"`} {
		if !strings.Contains(page, want) {
			t.Errorf("device page lacks %s", want)
		}
	}
	if page := get(nil); !strings.Contains(page, "not registered") || strings.Contains(page, `id="push-list"`) {
		t.Errorf("a browser without a device cookie sees the approval list")
	}
}

func TestNumbers(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for range 2000 {
		n, cs := numbers()
		if len(cs) != 3 || !slices.Contains(cs, n) || cs[0] == cs[1] || cs[1] == cs[2] || cs[0] == cs[2] {
			t.Fatalf("numbers() = %d, %v", n, cs)
		}
		for _, c := range cs {
			if c < 10 || c > 99 {
				t.Fatalf("choice %d is not two digits", c)
			}
		}
		seen[slices.Index(cs, n)] = true
		seen[100+n] = true
	}
	// The right number is not always in the same place, and every number
	// from 10 to 99 comes up.
	if !seen[0] || !seen[1] || !seen[2] || !seen[110] || !seen[199] {
		t.Fatal("numbers are not spread over positions and values")
	}
}

func BenchmarkVerify(b *testing.B) {
	f := setup(b)
	alice := f.account(b, "alice")
	creds := f.creds(b, alice.u)
	dev := creds[0]
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		// Let earlier approvals expire, as they do between real sign-ins,
		// so the store does not grow with the iteration count.
		f.c.add(2 * ApprovalTTL)
		_, _ = f.st.DeleteExpiredKV(ctx, f.c.now())
		ch, err := f.m.BeginVerify(ctx, alice.u, creds)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.m.answer(ctx, dev, ch.Show["approval"].(string), ch.Show["number"].(int)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := f.m.Verify(ctx, alice.u, creds, ch.State, authn.Response{}); err != nil {
			b.Fatal(err)
		}
	}
}
