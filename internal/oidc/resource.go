package oidc

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Tokens for a database (RFC 8707 resource indicators). A client asks
// for a token that only the database gateway's database NAME accepts by
// sending resource=urn:stepgate:database:NAME with the device
// authorization request; the token's audience is then [NAME] alone, the
// client's own id left out, so the token opens that database and nothing
// the client's own tokens open: not userinfo, not a gateway route, not
// another database. The resource is kept with the grant, and a refresh
// can neither drop nor change it.

// DatabaseResourcePrefix starts the resource indicator of a database the
// server serves: urn:stepgate:database:bank names the database bank.
const DatabaseResourcePrefix = "urn:stepgate:database:"

// DatabaseResource is the resource indicator of the database name.
func DatabaseResource(name string) string { return DatabaseResourcePrefix + name }

// errInvalidTarget is RFC 8707's invalid_target.
func errInvalidTarget(desc string) *Error {
	return oauthErr("invalid_target", http.StatusBadRequest, desc)
}

// requestedDatabase reads the resource parameter of form: the database
// it names, "" when there is none, or invalid_target when it names
// something this server does not serve. Only a served database can be
// an audience: any other value would let a client mint tokens for
// whatever audience it likes (an app, another client) with its users'
// approval.
func (p *Provider) requestedDatabase(form url.Values) (string, error) {
	raw, ok := form["resource"]
	if !ok {
		return "", nil
	}
	if len(raw) != 1 {
		return "", errInvalidTarget("ask for one database per token: send resource once")
	}
	name, ok := strings.CutPrefix(raw[0], DatabaseResourcePrefix)
	if !ok || !slices.Contains(p.Databases, name) {
		return "", errInvalidTarget(p.servedDatabasesHint(raw[0]))
	}
	return name, nil
}

// servedDatabasesHint says what resource values the server accepts.
func (p *Provider) servedDatabasesHint(got string) string {
	if len(p.Databases) == 0 {
		return fmt.Sprintf("resource %q names no database: this server serves none (configure databases:)", got)
	}
	served := make([]string, len(p.Databases))
	for i, name := range p.Databases {
		served[i] = DatabaseResource(name)
	}
	return fmt.Sprintf("resource %q names no database this server serves; use one of %s", got, strings.Join(served, ", "))
}

// audience is the aud of an access token minted for client under a: the
// database the grant was made for, or the client itself.
func audience(clientID string, a authState) []string {
	if a.Database != "" {
		return []string{a.Database}
	}
	return []string{clientID}
}
