package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"

	"github.com/stepgate/stepgate/internal/store"
)

// Frame renders the pages of features outside this package (the push
// device page) in the shared layout, so they look like every other page
// without knowing what the layout reads. Static files they load, push.js
// among them, are served under /static/ by Mount.
type Frame struct {
	layout *template.Template
}

// frameView is what the layout reads, with the feature's content.
type frameView struct {
	Title   string
	Base    string // empty: the page is on Stepgate's own host
	User    *store.User
	CSRF    string
	Content template.HTML
}

// NewFrame parses the shared layout.
func NewFrame() (*Frame, error) {
	layout, err := template.New("").ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: page layout: %w", err)
	}
	if _, err := layout.New("content").Parse(`{{.Content}}`); err != nil {
		return nil, fmt.Errorf("web: page layout: %w", err)
	}
	return &Frame{layout: layout}, nil
}

// Render writes a whole page: title and the feature's content, which its
// html/template already escaped, in the layout. Nothing is written when
// the layout fails, so the caller can still answer with an error.
func (f *Frame) Render(w http.ResponseWriter, status int, title string, content template.HTML) error {
	var buf bytes.Buffer
	if err := f.layout.ExecuteTemplate(&buf, "layout", frameView{Title: title, Content: content}); err != nil {
		return fmt.Errorf("render %s page: %w", title, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
	return nil
}
