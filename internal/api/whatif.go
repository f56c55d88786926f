package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
)

// WhatIfAnswer is the What-If's answer: the Decision with every
// policy's result, and for a user their roles, active (what the policies
// were evaluated with), elevated and eligible apart.
type WhatIfAnswer struct {
	*policy.Decision
	Roles *access.WhatIfRoles `json:"roles,omitempty"`
}

// whatIf evaluates a hypothetical request (policy.WhatIf as JSON)
// against the current policies and returns the Decision with every
// policy's result.
func (a *API) whatIf(w http.ResponseWriter, r *http.Request) error {
	var in policy.WhatIf
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	req, roles, err := a.deps.Access.WhatIf(r.Context(), a.deps.Users, &in, a.now())
	switch {
	case errors.Is(err, access.ErrInvalidWhatIf), errors.Is(err, access.ErrUnknownUser):
		// The what-if's own words, which name the field to fix.
		return &Error{Status: httpx.StatusOf(err), Code: "invalid_request", Description: oneLine(err)}
	case err != nil:
		return err
	}
	d := a.deps.Policies.Evaluate(req, policy.EvaluateOptions{Explain: true})
	writeJSON(w, http.StatusOK, WhatIfAnswer{Decision: &d, Roles: roles})
	return nil
}

// decodeJSON reads exactly one JSON object into v, strictly: a field v
// does not have is an error rather than silently ignored, because a
// misspelt "sign_in_risk" would otherwise answer a different question.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeJSONWithin(w, r, v, maxBody)
}

// decodeJSONWithin is decodeJSON for a body of at most limit bytes.
func decodeJSONWithin(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	// Requiring the JSON media type also stops cross-site form posts: a
	// browser sends application/json across origins only after a CORS
	// preflight, which this server never approves.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "invalid_request",
			Description: "the body must be JSON; send Content-Type: application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Status: httpx.StatusOf(errTrailingJSON), Code: "invalid_request", Description: errTrailingJSON.Error()}
	}
	return nil
}

// errTrailingJSON refuses a body with more after its one JSON object.
var errTrailingJSON = errkind.New(errkind.Invalid, "the body has more after the JSON object; send exactly one object")

// jsonError turns a decoding error into a message that names the
// problem and the fix.
func jsonError(err error, v any) error {
	// Every error decoding the request's body is the client's.
	status := httpx.StatusOf(errkind.Mark(err, errkind.Invalid))
	bad := func(format string, args ...any) error {
		return &Error{Status: status, Code: "invalid_request", Description: fmt.Sprintf(format, args...), Debug: err}
	}
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		unknown = "json: unknown field "
	)
	switch {
	case errors.As(err, &tooBig):
		return &Error{Status: status, Code: "invalid_request",
			Description: fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit)}
	case errors.Is(err, io.EOF):
		return bad("the body is empty; send a JSON object like {\"user\": \"alice\", \"app\": \"payroll\"}")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad("malformed JSON: the body ends in the middle of a value")
	case errors.As(err, &syntax):
		return bad("malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return bad("the body must be a JSON object, not %s", typ.Value)
		}
		return bad("field %q must be %s, not %s", field, describeType(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), unknown):
		// encoding/json has no typed error for this one.
		name := strings.TrimPrefix(err.Error(), unknown)
		return bad("unknown field %s; the fields are %s", name, strings.Join(jsonFields(v), ", "))
	}
	return bad("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(describeType(t.Elem()), "a ") + "s"
	case reflect.Map:
		return "an object"
	}
	return t.String()
}

// jsonFields lists the JSON names of v's struct fields.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// oneLine joins a multi-line error (errors.Join) for a JSON string.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
