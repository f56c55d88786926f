package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/store"
)

// limitedMethod is a method whose own count refuses: at the start (too
// many codes sent) when lockBegin is set, and always at the answer (too
// many wrong codes), as one-time codes and push do.
type limitedMethod struct{ lockBegin *atomic.Bool }

func (limitedMethod) Name() string  { return "limited" }
func (limitedMethod) Label() string { return "Limited code" }
func (limitedMethod) BeginEnroll(context.Context, store.User, string) (authn.Challenge, error) {
	return authn.Challenge{}, authn.ErrNotAllowed
}
func (limitedMethod) FinishEnroll(context.Context, store.User, []byte, authn.Response) (authn.Enrolled, error) {
	return authn.Enrolled{}, authn.ErrNotAllowed
}
func (m limitedMethod) BeginVerify(context.Context, store.User, []store.Credential) (authn.Challenge, error) {
	if m.lockBegin.Load() {
		return authn.Challenge{}, authn.ErrThrottled
	}
	return authn.Challenge{State: []byte(`{}`), Show: map[string]any{"kind": "code"}}, nil
}
func (limitedMethod) Verify(context.Context, store.User, []store.Credential, []byte, authn.Response) (authn.Proof, error) {
	return authn.Proof{}, authn.ErrThrottled
}

// TestStepUpMethodLimitIsNotAFault: when a method's own limit refuses,
// at the start or at the answer, the step-up page says to wait (429) and
// never shows a server error.
func TestStepUpMethodLimitIsNotAFault(t *testing.T) {
	lockBegin := &atomic.Bool{}
	rg := newRig(t, func(d *Deps) { d.Methods = authn.NewRegistry(limitedMethod{lockBegin}) })
	u := rg.addUser("alice")
	if _, err := rg.st.CreateCredential(context.Background(), store.Credential{ID: "c1", UserID: u.ID, Type: "limited", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	b := rg.browser()
	b.signIn("alice")

	resp, body := b.do("GET", "/stepup?method=limited&return_to=/account", nil)
	cer := rigCeremonyRe.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || cer == nil {
		t.Fatalf("step-up page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = b.do("POST", "/stepup", url.Values{"ceremony": {cer[1]}, "code": {"123456"}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Wait a few minutes") {
		t.Fatalf("fail/limit-at-answer: status %d, want 429 and what to do\n%s", resp.StatusCode, body)
	}
	lockBegin.Store(true)
	resp, body = b.do("GET", "/stepup?method=limited&return_to=/account", nil)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Wait a few minutes") {
		t.Fatalf("fail/limit-at-start: status %d, want 429 and what to do\n%s", resp.StatusCode, body)
	}
}
