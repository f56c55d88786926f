package audit

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// TestSignInLogEntriesAreBounded writes the entries an anonymous flood
// makes (failed sign-ins and authorization requests with a megabyte user
// agent, user name and acr_values) and reads back what was stored: each
// entry stays within a few kilobytes, whatever the client sent, and the
// caller's detections are left as they were.
func TestSignInLogEntriesAreBounded(t *testing.T) {
	st := openStore(t)
	l := NewSignInLog(st, SignInLogOptions{})
	huge := strings.Repeat("é", 512<<10) // a megabyte, two bytes a character
	evidence := map[string]string{"user_agent": huge}
	many := make([]string, 1000)
	for i := range many {
		many[i] = huge[:1024]
	}
	const floods = 20
	for range floods {
		e := SignIn{
			Source: "oidc", Username: huge, ClientApp: huge, Device: huge, Reason: reason.Code(huge), App: "webapp", Decision: "sign-in",
			Contexts: many, MethodsPrompted: many,
			Risk:  []Detection{{Type: "unfamiliar-properties", Level: "low", Reason: "unfamiliar", Evidence: evidence}},
			Facts: &Facts{Request: policy.Request{ClientApp: huge, AuthContexts: many, Device: policy.Device{ID: huge}}},
		}
		if err := l.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if evidence["user_agent"] != huge {
		t.Fatal("clamping changed the caller's detection")
	}
	rows, err := st.ListSignIns(context.Background(), store.SignInQuery{Limit: 100})
	if err != nil || len(rows) != floods {
		t.Fatalf("stored %d rows, %v; want %d", len(rows), err, floods)
	}
	const bound = 64 << 10
	for _, r := range rows {
		if len(r.Body) > bound {
			t.Fatalf("attack/large-anonymous-entry: an entry stored %d bytes, want at most %d", len(r.Body), bound)
		}
		if !utf8.Valid(r.Body) {
			t.Fatal("clamping cut a character in two")
		}
	}
	t.Logf("a megabyte-sized request is logged in %d bytes", len(rows[0].Body))
}
