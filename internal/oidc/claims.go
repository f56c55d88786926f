package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// maxClaimsParam bounds the claims parameter; real ones are a few hundred
// bytes.
const maxClaimsParam = 8 << 10

// ClaimsRequest is the claims request parameter (OIDC Core 5.5), in both
// the OpenID form ({"id_token":{"acr":{"essential":true,"values":["mfa"]}}})
// and Entra's form for claims challenges
// ({"access_token":{"acrs":{"essential":true,"value":"c2"}},
// "xms_cc":{"values":["cp1"]}}).
type ClaimsRequest struct {
	IDToken     map[string]*ClaimSpec `json:"id_token,omitempty"`
	UserInfo    map[string]*ClaimSpec `json:"userinfo,omitempty"`
	AccessToken map[string]*ClaimSpec `json:"access_token,omitempty"`
}

// ClaimSpec is one requested claim; null in JSON means "please include
// it", which decodes to a nil *ClaimSpec.
type ClaimSpec struct {
	Essential bool              `json:"essential,omitempty"`
	Value     json.RawMessage   `json:"value,omitempty"`
	Values    []json.RawMessage `json:"values,omitempty"`
}

// wanted returns the string values the spec asks for: Value, then Values.
func (s *ClaimSpec) wanted() []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, raw := range append([]json.RawMessage{s.Value}, s.Values...) {
		// JSON null means "not given" (OIDC Core 5.5.1). It decodes into
		// a string without error, as "", which would turn into a demand
		// for an acr (or capability) named "" that no one asked for.
		if raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue
		}
		var v string
		if json.Unmarshal(raw, &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// checkStrings refuses a spec whose values are not all strings: for the
// claims Stepgate enforces (acr, acrs, xms_cc) a number or object is a
// broken request, not something to skip.
func (s *ClaimSpec) checkStrings() error {
	if s == nil {
		return nil
	}
	for _, raw := range append([]json.RawMessage{s.Value}, s.Values...) {
		var v string
		if raw != nil && json.Unmarshal(raw, &v) != nil {
			return fmt.Errorf("%s is not a string", raw)
		}
	}
	return nil
}

// enforced are the claims whose values Stepgate acts on.
var enforced = []string{"acr", "acrs", "xms_cc"}

// ParseClaims parses the claims parameter strictly: unknown members at
// the top level, non-string values for the claims Stepgate acts on, and
// trailing data are errors, so a malformed challenge cannot be
// half-understood into a weaker requirement.
func ParseClaims(s string) (*ClaimsRequest, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > maxClaimsParam {
		return nil, fmt.Errorf("the claims parameter is longer than %d bytes", maxClaimsParam)
	}
	if err := noRepeatedMembers([]byte(s)); err != nil {
		return nil, fmt.Errorf("the claims parameter %w", err)
	}
	var top map[string]json.RawMessage
	if err := strictJSON([]byte(s), &top); err != nil {
		return nil, fmt.Errorf("the claims parameter is not a JSON object: %w", err)
	}
	var cr ClaimsRequest
	for k, raw := range top {
		var dst *map[string]*ClaimSpec
		switch k {
		case "id_token":
			dst = &cr.IDToken
		case "userinfo":
			dst = &cr.UserInfo
		case "access_token":
			dst = &cr.AccessToken
		default:
			return nil, fmt.Errorf("the claims parameter has an unknown member %q; use id_token, userinfo or access_token", k)
		}
		if err := parseClaimSet(raw, dst); err != nil {
			return nil, fmt.Errorf("claims.%s: %w", k, err)
		}
	}
	// Entra's form puts xms_cc beside access_token at the top level in
	// some clients; both places are read by Capabilities.
	return &cr, nil
}

func parseClaimSet(raw json.RawMessage, dst *map[string]*ClaimSpec) error {
	var m map[string]json.RawMessage
	if err := strictJSON(raw, &m); err != nil {
		return errors.New("must be an object of claims")
	}
	out := make(map[string]*ClaimSpec, len(m))
	for name, v := range m {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			out[name] = nil
			continue
		}
		var spec ClaimSpec
		if err := strictJSON(v, &spec); err != nil {
			return fmt.Errorf("%s: must be null or an object with essential, value or values: %w", name, err)
		}
		if slices.Contains(enforced, name) {
			if err := spec.checkStrings(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		out[name] = &spec
	}
	*dst = out
	return nil
}

// noRepeatedMembers refuses a JSON document in which an object names a
// member twice. Decoders disagree on which one counts (Go's keeps the
// last, others the first), so {"id_token":{"acr":{"values":["c2"]},
// "acr":null}} would demand c2 of one reader and nothing of another.
func noRepeatedMembers(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object bool
		seen   map[string]bool
		key    bool // the next token of an object is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("is not a JSON object: %w", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name, _ := tok.(string)
			if top.seen[name] {
				return fmt.Errorf("names the member %q twice; send each once", name)
			}
			top.seen[name], top.key = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.object {
				top.key = true // after this value, a name
			}
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			if top != nil && top.object {
				top.key = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.object {
			top.key = true // a scalar member value: a name comes next
		}
	}
}

// strictJSON decodes one JSON value, refusing unknown fields and trailing
// data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// Only white space may follow. dec.More alone is not enough: it
	// reports false before a stray "}" or "]", so {"id_token":{}}} was
	// accepted, and a parser that reads what a gateway in front of us
	// rejects (or the reverse) is how requirements get smuggled.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// acrRequirement is what one parameter of the request asks of the
// authentication: one of values (OIDC Core 5.5.1, "one of a set of
// values"; acr_values in order of preference). Every requirement of a
// request must be met; none can stand in for another.
type acrRequirement struct {
	from   string // the parameter, for errors and the log
	values []string
}

// acrRequirements are the acr requirements of the claims parameter, in
// the order their satisfied value names the token's acr: id_token acr
// (what an OpenID relying party checks), access_token acr, userinfo acr,
// then Entra's access_token acrs. Essential or voluntary, each is a
// requirement: a client that names an acr must never get a weaker
// token. A claim asked for without values ("acr": null, or only
// {"essential": true}) asks for the claim, not for a class.
func (cr *ClaimsRequest) acrRequirements() []acrRequirement {
	if cr == nil {
		return nil
	}
	var out []acrRequirement
	for _, c := range []struct {
		from string
		spec *ClaimSpec
	}{
		{"claims id_token acr", cr.IDToken["acr"]},
		{"claims access_token acr", cr.AccessToken["acr"]},
		{"claims userinfo acr", cr.UserInfo["acr"]},
		{"claims access_token acrs", cr.AccessToken["acrs"]},
	} {
		var values []string
		for _, v := range c.spec.wanted() {
			if !slices.Contains(values, v) {
				values = append(values, v)
			}
		}
		if len(values) > 0 {
			out = append(out, acrRequirement{from: c.from, values: values})
		}
	}
	return out
}

// capabilities are the client capabilities the request declares (xms_cc).
func (cr *ClaimsRequest) capabilities() []string {
	if cr == nil {
		return nil
	}
	return cr.AccessToken["xms_cc"].wanted()
}
