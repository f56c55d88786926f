package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/api"
)

// TestOpenAPIDescribesEveryRoute holds the served OpenAPI document to
// the router's table: every route is described, and nothing else is.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h := newAPI(t)
	req := httptest.NewRequest("GET", "/api/v1/openapi.json", nil)
	req.RemoteAddr, req.Host = "127.0.0.1:5000", "localhost:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET openapi.json: %d %s", rec.Code, rec.Body)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	var described []string
	for path, ops := range doc.Paths {
		for method := range ops {
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	routes := api.Routes()
	slices.Sort(described)
	slices.Sort(routes)
	if !slices.Equal(described, routes) {
		t.Fatalf("the OpenAPI document describes\n  %v\nbut the API serves\n  %v", described, routes)
	}
}

// TestOpenAPIReferencesResolve: every $ref in the OpenAPI document names
// a component the document defines, so a client generator reads it
// whole.
func TestOpenAPIReferencesResolve(t *testing.T) {
	h := newAPI(t)
	req := httptest.NewRequest("GET", "/api/v1/openapi.json", nil)
	req.RemoteAddr, req.Host = "127.0.0.1:5000", "localhost:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	if len(refs) < 10 {
		t.Fatalf("only %d references: the walk is broken", len(refs))
	}
	for _, ref := range refs {
		var cur any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[part]
		}
		if cur == nil {
			t.Errorf("%s names nothing in the document", ref)
		}
	}
}
