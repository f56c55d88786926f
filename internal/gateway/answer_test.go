package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The writer holds only what can be shown later as it was: a complete,
// small answer that is not a redirect. Everything else reaches the
// browser at once, unchanged.
func TestHoldingWriter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  func(w http.ResponseWriter)
		held    bool
		status  int
		bodyLen int
		loc     string
	}{
		{name: "ok/held-page", held: true, status: http.StatusOK, bodyLen: 5, answer: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("hello"))
		}},
		{name: "ok/held-form-error", held: true, status: http.StatusUnprocessableEntity, bodyLen: 3, answer: func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte("bad"))
		}},
		{name: "ok/held-unannounced-length", held: true, status: http.StatusOK, bodyLen: 4, answer: func(w http.ResponseWriter) {
			// The proxy flushes an answer without Content-Length piece by
			// piece; a page is held all the same.
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("ab"))
			_ = http.NewResponseController(w).Flush()
			_, _ = w.Write([]byte("cd"))
		}},
		{name: "pass/unbuffered", status: http.StatusOK, bodyLen: 2, answer: func(w http.ResponseWriter) {
			w.Header().Set("X-Accel-Buffering", "no")
			_, _ = w.Write([]byte("ab"))
			_ = http.NewResponseController(w).Flush()
		}},
		{name: "ok/held-empty", held: true, status: http.StatusOK, answer: func(http.ResponseWriter) {}},
		{name: "pass/too-large", status: http.StatusOK, bodyLen: heldAnswerLimit + 2, answer: func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(strings.Repeat("a", heldAnswerLimit)))
			_, _ = w.Write([]byte("bb"))
		}},
		{name: "pass/streamed", status: http.StatusOK, bodyLen: 12, answer: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("data: 1\n\n"))
			_ = http.NewResponseController(w).Flush()
			_, _ = w.Write([]byte("ok\n"))
		}},
		{name: "pass/relative-redirect", status: http.StatusSeeOther, loc: "/app/transfers/done", answer: func(w http.ResponseWriter) {
			w.Header().Set("Location", "transfers/done")
			w.WriteHeader(http.StatusSeeOther)
		}},
		{name: "pass/absolute-redirect", status: http.StatusFound, loc: "https://elsewhere.example/x", answer: func(w http.ResponseWriter) {
			w.Header().Set("Location", "https://elsewhere.example/x")
			w.WriteHeader(http.StatusFound)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			hw := &holdingWriter{w: rec, header: http.Header{}, kept: "/app/transfers"}
			tc.answer(hw)
			if hw.passing == tc.held {
				t.Fatalf("held %v, want %v", !hw.passing, tc.held)
			}
			if tc.held {
				if hw.statusOr200() != tc.status || hw.body.Len() != tc.bodyLen || rec.Body.Len() != 0 || rec.Code != http.StatusOK && rec.Code != 0 {
					t.Fatalf("held %d with %d bytes, sent %d bytes; want %d with %d bytes, nothing sent", hw.statusOr200(), hw.body.Len(), rec.Body.Len(), tc.status, tc.bodyLen)
				}
				return
			}
			if rec.Code != tc.status || rec.Body.Len() != tc.bodyLen || rec.Header().Get("Location") != tc.loc {
				t.Fatalf("sent %d with %d bytes, Location %q; want %d with %d bytes, %q", rec.Code, rec.Body.Len(), rec.Header().Get("Location"), tc.status, tc.bodyLen, tc.loc)
			}
		})
	}
}

// The answer cookie is the gateway's own: never sent to the application
// (whose logs could then name a held answer), never set by it.
func TestAnswerCookieIsOwn(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		rt := &route{scheme: scheme}
		got := rt.withoutOwnCookies([]string{"a=1; " + rt.answerCookie() + "=secret; b=2"})
		if len(got) != 1 || got[0] != "a=1; b=2" {
			t.Errorf("%s: the application receives cookies %q", scheme, got)
		}
		h := http.Header{"Set-Cookie": {rt.answerCookie() + "=planted; Path=/", "c=3"}}
		rt.dropOwnSetCookies(h)
		if v := h.Values("Set-Cookie"); len(v) != 1 || v[0] != "c=3" {
			t.Errorf("%s: the application sets %q", scheme, v)
		}
	}
}
