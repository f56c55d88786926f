//go:build cgo

package dbgate

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/jackc/pgx/v5"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// BenchmarkSelect compares a pgbench-style select through the gateway
// with the same select on a direct connection, in the simple and the
// extended protocol.
//
//	scripts/with-postgres.sh go test -run '^$' -bench Select -benchtime 3000x ./internal/dbgate/
func BenchmarkSelect(b *testing.B) {
	r := newRig(b)
	token := r.token("u-alice", "bank", "password")
	through, err := pgx.Connect(context.Background(), r.dsn("alice", token, "disable"))
	if err != nil {
		b.Fatal(err)
	}
	defer through.Close(context.Background())
	cfg, err := pgx.ParseConfig(os.Getenv(pgtest.EnvDSN))
	if err != nil {
		b.Fatal(err)
	}
	cfg.Database = r.dbname
	direct, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close(context.Background())
	for _, c := range []struct {
		name string
		conn *pgx.Conn
	}{{"direct", direct}, {"gateway", through}} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			b.Run(c.name+"/"+mode.String(), func(b *testing.B) {
				var name string
				for i := 0; b.Loop(); i++ {
					if err := c.conn.QueryRow(context.Background(), "SELECT name FROM customers WHERE id = $1", mode, 1+i%2).Scan(&name); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkStatementDecision is what the gateway does for each statement
// before relaying it, without the network: classify the text (through
// the parse cache) and decide (the token's freshness, guardrails,
// labels, contexts, the policies, and the sign-in log for a logged
// decision). Each typical statement comes in its forms:
//
//   - text: a simple query with its values written in, a new number each
//     time (as pgbench -M simple and psql send them), through the cache's
//     number key;
//   - prepared: an Execute of a statement parsed once (the extended
//     protocol), judged on the facts its Bind took.
//
// The labelled read and the write ask for context c7, which the token's
// MFA meets: allowed, and written to the sign-in log (here a function
// that keeps nothing).
//
//	go test -run '^$' -bench StatementDecision -benchmem ./internal/dbgate/
func BenchmarkStatementDecision(b *testing.B) {
	statements := []struct{ name, format string }{
		{"select-where", "SELECT name FROM customers WHERE id = %d"},
		{"update", "UPDATE orders SET amount = amount + %d WHERE id = 7"},
		{"labelled-select", "SELECT name, ssn FROM customers WHERE id = %d"},
	}
	for _, st := range statements {
		b.Run(st.name+"/text", func(b *testing.B) {
			ss := benchSession(b)
			texts := make([]string, 1000)
			for i := range texts {
				texts[i] = fmt.Sprintf(st.format, 1+i)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				f, err := ss.cls.Classify(texts[i%len(texts)])
				if err != nil {
					b.Fatal(err)
				}
				if j, ok := ss.decide(ctx, f); !ok {
					b.Fatalf("refused: %s", j.refusal.Message)
				}
			}
		})
		b.Run(st.name+"/prepared", func(b *testing.B) {
			ss := benchSession(b)
			if _, err := ss.cls.Prepare("", strings.Replace(st.format, "%d", "$1", 1)); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if j, ok := ss.decide(ctx, ss.cls.Prepared("")); !ok {
					b.Fatalf("refused: %s", j.refusal.Message)
				}
			}
		})
	}
}

// benchSession is a signed-in session of the rig's database "bank" (its
// labels, contexts and policies) with no connection, whose token (MFA)
// was checked at the gateway's fixed time.
func benchSession(b *testing.B) *session {
	b.Helper()
	now := testStart
	snap := &staticPolicies{}
	doc, probs := policy.Parse("test.yaml", []byte(testPolicies))
	if len(probs) > 0 {
		b.Fatal(probs)
	}
	compiled, probs := policy.Compile(nil, doc)
	if len(probs) > 0 {
		b.Fatal(probs)
	}
	snap.snap.Store(compiled)
	srv, err := New(Database{
		Name: "bank", Upstream: Upstream{Address: "127.0.0.1:1"},
		Labels:        map[string][]string{"pii": {"customers.ssn"}},
		Contexts:      map[string]string{"label:pii": "c7", "class:write": "c7"},
		RefuseNoWhere: true,
	}, Deps{
		Policies: snap, Now: func() time.Time { return now },
		SignIns: func(context.Context, audit.SignIn) error { return nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	claims := &oauth.AccessClaims{
		Claims: jwt.Claims{Subject: "u-alice", Audience: jwt.Audience{"bank"}, Expiry: jwt.NewNumericDate(now.Add(time.Hour))},
		Proofs: []oauth.Proof{
			{Method: "password", Time: now.Add(-time.Minute).Unix(), AMR: []string{"pwd"}},
			{Method: "totp", Time: now.Add(-time.Minute).Unix(), AMR: []string{"otp"}},
		},
	}
	c := &client{addr: netip.MustParseAddr("127.0.0.1")}
	ss := &session{s: srv, c: c, cls: srv.Classifier.NewSession()}
	ss.ident.Store(&identity{user: store.User{ID: "u-alice", Username: "alice"}, claims: claims, verified: now})
	return ss
}
