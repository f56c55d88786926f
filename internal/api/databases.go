package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/stepgate/stepgate/internal/admin"
)

// Database is what a client needs to connect to a database through the
// database gateway: the address clients reach it at, the database name
// to give, and the certificate to verify the gateway with. None of it is
// a secret, but the address and the certificate are only told to whoever
// may connect.
type Database struct {
	Name string `json:"name"`
	// Host and Port are databases[].public_address, or the listen
	// address.
	Host string `json:"host"`
	Port int    `json:"port"`
	// DBName is the dbname to connect with: the gateway's name for the
	// database.
	DBName string `json:"dbname"`
	// SSLMode is always verify-full: the password is a bearer token.
	SSLMode string `json:"sslmode"`
	// CACertificate is the PEM certificate to verify the gateway with
	// (sslrootcert): the generated certificate, or tls.ca_file. Empty
	// when the gateway's certificate is configured without ca_file: the
	// client's own trusted roots verify it.
	CACertificate string `json:"ca_certificate,omitempty"`
}

// databasePattern is the connection information's route.
const databasePattern = "/api/v1/databases/{name}"

// databaseCaller admits a person to the connection information of one
// database with the access token they connect to it with: a token whose
// audience is that database. Only that route, only that database: the
// principal it returns carries the database, and every other route
// refuses it. refusal is what the API's own access rule answered, given
// back for every other request.
func (a *API) databaseCaller(r *http.Request, refusal error) (principal, error) {
	name, ok := strings.CutPrefix(r.URL.Path, "/api/v1/databases/")
	if !ok || r.Method != http.MethodGet || name == "" || strings.Contains(name, "/") || a.deps.Tokens == nil {
		return principal{}, refusal
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.Count(tok, ".") != 2 {
		return principal{}, refusal
	}
	claims, err := a.deps.Tokens.VerifyAccessToken(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		return principal{}, &Error{Status: http.StatusUnauthorized, Code: "invalid_token",
			Description: "the access token is not valid: expired, revoked, or not issued by this server; get a new one for the database " + name, Debug: err}
	}
	if !slices.Contains(claims.Audience, name) {
		return principal{}, &Error{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "the access token was not issued for the database " + name + ": get one for it (stepgate psql " + name + ")"}
	}
	return principal{actor: admin.Actor("user:" + claims.Subject), database: name}, nil
}

// database answers GET /api/v1/databases/{name}.
func (a *API) database(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	p, _ := r.Context().Value(principalKey{}).(principal)
	if p.database != "" && p.database != name {
		return &Error{Status: http.StatusForbidden, Code: "insufficient_scope", Description: "the access token was not issued for the database " + name}
	}
	i := slices.IndexFunc(a.deps.Databases, func(d Database) bool { return d.Name == name })
	if i < 0 {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: a.servedDatabases(name)}
	}
	writeJSON(w, http.StatusOK, a.deps.Databases[i])
	return nil
}

// servedDatabases says that name is not served, and what is.
func (a *API) servedDatabases(name string) string {
	if len(a.deps.Databases) == 0 {
		return "no database " + name + ": this server serves no databases"
	}
	names := make([]string, len(a.deps.Databases))
	for i, d := range a.deps.Databases {
		names[i] = d.Name
	}
	return "no database " + name + " is served here; served: " + strings.Join(names, ", ")
}

// errDatabaseOnly refuses a database's token on any other route.
var errDatabaseOnly = errors.New("a database token reads only its database's connection information")
