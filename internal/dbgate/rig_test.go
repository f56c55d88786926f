//go:build cgo

package dbgate

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// testPolicies ask for MFA under the context c7, which the rig's
// database asks for on labelled data, DDL and writes.
const testPolicies = `
auth_contexts:
  - id: c7
    name: Sensitive data
policies:
  - name: sensitive-mfa
    state: enabled
    users:
      include: {users: [all]}
    target:
      auth_contexts: [c7]
    grant:
      controls: [mfa]
`

// rig is a gateway in front of a fresh database on the test PostgreSQL.
type rig struct {
	t        testing.TB
	srv      *Server
	port     int
	dbname   string
	direct   *pgx.Conn // to the upstream, past the gateway
	tokens   *fakeTokens
	users    *fakeUsers
	now      atomic.Int64 // Unix nanoseconds of the gateway's clock
	certPEM  string
	policies *staticPolicies

	mu      sync.Mutex // guards signIns and amends
	signIns []audit.SignIn
	amends  []audit.SignIn
}

type staticPolicies struct {
	snap atomic.Pointer[policy.Snapshot]
}

func (p *staticPolicies) Load() *policy.Snapshot { return p.snap.Load() }

// usePolicies compiles src and makes the gateway decide with it.
func (r *rig) usePolicies(t testing.TB, src string) {
	t.Helper()
	doc, probs := policy.Parse("test.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	snap, probs := policy.Compile(nil, doc)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	r.policies.snap.Store(snap)
}

// fakeTokens stands in for the OIDC provider's verification: it knows
// the tokens it was given, refuses revoked and expired ones as the
// provider does, and returns their claims.
type fakeTokens struct {
	mu      sync.Mutex // guards the maps
	claims  map[string]*oauth.AccessClaims
	revoked map[string]bool
	now     func() time.Time
}

func (f *fakeTokens) VerifyAccessToken(_ context.Context, raw string) (*oauth.AccessClaims, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.claims[raw]
	switch {
	case !ok:
		return nil, &oauth.Error{Code: "invalid_token", Description: "unknown"}
	case f.revoked[raw]:
		return nil, &oauth.Error{Code: "invalid_token", Description: "revoked"}
	case !f.now().Before(c.Expiry.Time()):
		return nil, &oauth.Error{Code: "invalid_token", Description: "expired"}
	}
	cc := *c
	return &cc, nil
}

func (f *fakeTokens) revoke(raw string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[raw] = true
}

// fakeUsers is the gateway's user directory; a test changes a user
// (their grants, say) with set while sessions run.
type fakeUsers struct {
	mu sync.Mutex // guards m
	m  map[string]store.User
}

func (u *fakeUsers) GetUser(_ context.Context, id string) (store.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if x, ok := u.m[id]; ok {
		return x, nil
	}
	return store.User{}, store.ErrNotFound
}

func (u *fakeUsers) set(x store.User) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.m[x.ID] = x
}

var testStart = time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)

// newRig starts a gateway for the database "bank" in front of a new
// database holding customers (id, name, ssn) and orders (id, amount).
func newRig(t testing.TB, edit ...func(*Database)) *rig {
	t.Helper()
	return newRigWith(t, nil, edit...)
}

// newRigWith is newRig with deps, when set, editing the gateway's
// collaborators.
func newRigWith(t testing.TB, deps func(*Deps), edit ...func(*Database)) *rig {
	t.Helper()
	pgtest.Require(t)
	base, err := pgconn.ParseConfig(os.Getenv(pgtest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, dbname: "dbgate_" + strings.ToLower(rand.Text())[:12]}
	r.now.Store(testStart.UnixNano())
	ctx := context.Background()
	admin, err := pgconn.ConnectConfig(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Exec(ctx, "CREATE DATABASE "+r.dbname).Close(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Exec(context.Background(), "DROP DATABASE "+r.dbname+" WITH (FORCE)").Close()
		admin.Close(context.Background())
	})
	dcfg, err := pgx.ParseConfig(os.Getenv(pgtest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	dcfg.Database = r.dbname
	delete(dcfg.RuntimeParams, "search_path")
	if r.direct, err = pgx.ConnectConfig(ctx, dcfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.direct.Close(context.Background()) })
	r.mustDirect(`CREATE TABLE customers (id int PRIMARY KEY, name text, ssn text);
		INSERT INTO customers VALUES (1, 'Ada', '111-11-1111'), (2, 'Bob', '222-22-2222');
		CREATE TABLE orders (id int, amount int)`)

	dir := t.TempDir()
	cert, certFile, err := LoadOrCreateCert(dir, "bank", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.certPEM = certFile
	db := Database{
		Name: "bank", Listen: "127.0.0.1:0",
		Upstream:         Upstream{Address: net.JoinHostPort(base.Host, fmt.Sprint(base.Port)), Database: r.dbname, User: base.User, Password: base.Password},
		TLS:              &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		InsecureLoopback: true,
		Labels:           map[string][]string{"pii": {"customers.ssn"}},
		Contexts:         map[string]string{"label:pii": "c7", "class:write": "c7"},
		RefuseNoWhere:    true,
		StatementWait:    5 * time.Second,
	}
	for _, e := range edit {
		e(&db)
	}
	r.policies = &staticPolicies{}
	r.usePolicies(t, testPolicies)
	nowFn := func() time.Time { return time.Unix(0, r.now.Load()).UTC() }
	r.tokens = &fakeTokens{claims: map[string]*oauth.AccessClaims{}, revoked: map[string]bool{}, now: nowFn}
	r.users = &fakeUsers{m: map[string]store.User{"u-alice": {ID: "u-alice", Username: "alice"}, "u-bob": {ID: "u-bob", Username: "bob"}}}
	d := Deps{
		Tokens: r.tokens, Users: r.users, Policies: r.policies,
		SignIns: func(_ context.Context, e audit.SignIn) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.signIns = append(r.signIns, e)
			return nil
		},
		AmendSignIn: func(_ context.Context, e audit.SignIn) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.amends = append(r.amends, e)
			return nil
		},
		Now: nowFn,
	}
	if deps != nil {
		deps(&d)
	}
	r.srv, err = New(db, d)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *rig) mustDirect(sql string) {
	r.t.Helper()
	if _, err := r.direct.Exec(context.Background(), sql); err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
}

// token registers an access token for user (a user id), for audience,
// proven with methods, valid for an hour of the gateway's clock.
func (r *rig) token(userID, audience string, methods ...string) string {
	r.t.Helper()
	raw := "tok-" + rand.Text()
	now := time.Unix(0, r.now.Load())
	c := &oauth.AccessClaims{
		Claims: jwt.Claims{Subject: userID, Audience: jwt.Audience{audience}, ID: rand.Text(),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))},
		ClientID: audience,
	}
	for _, m := range methods {
		c.Proofs = append(c.Proofs, oauth.Proof{Method: m, Time: now.Add(-time.Minute).Unix(), AMR: []string{amrOf(m)}})
	}
	r.tokens.mu.Lock()
	r.tokens.claims[raw] = c
	r.tokens.mu.Unlock()
	return raw
}

func amrOf(method string) string {
	switch method {
	case "password":
		return "pwd"
	case "totp":
		return "otp"
	}
	return method
}

func (r *rig) advance(d time.Duration) { r.now.Add(int64(d)) }

// dsn is a connection string to the gateway.
func (r *rig) dsn(user, token, sslmode string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d dbname=bank user=%s password=%s sslmode=%s", r.port, user, token, sslmode)
}

// connect opens a pgx connection through the gateway.
func (r *rig) connect(user, token string) (*pgx.Conn, error) {
	r.t.Helper()
	conn, err := pgx.Connect(context.Background(), r.dsn(user, token, "disable"))
	if err == nil {
		r.t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

func (r *rig) mustConnect(user, token string) *pgx.Conn {
	r.t.Helper()
	conn, err := r.connect(user, token)
	if err != nil {
		r.t.Fatalf("connect through the gateway: %v", err)
	}
	return conn
}

// entries returns the sign-in log as written so far.
func (r *rig) entries() []audit.SignIn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.SignIn(nil), r.signIns...)
}

// amended returns the amendments made so far, waiting up to a few
// seconds for at least n: they are made as the answers are relayed.
func (r *rig) amended(n int) []audit.SignIn {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		out := append([]audit.SignIn(nil), r.amends...)
		r.mu.Unlock()
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sqlState is the SQLSTATE of err, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func wantState(t *testing.T, err error, code string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("error = %v, want SQLSTATE %s", err, code)
	}
	return pe
}

// countRows counts rows of table directly on the upstream.
func (r *rig) countRows(table string) int {
	r.t.Helper()
	var n int
	if err := r.direct.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
