package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every endpoint; TestOpenAPIDescribesEveryRoute
// holds it to the route table.
//
//go:embed openapi.json
var openAPIDoc []byte

func (a *API) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, err := w.Write(openAPIDoc)
	return err
}
