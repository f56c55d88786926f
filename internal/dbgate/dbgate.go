// Package dbgate is Stepgate's PostgreSQL gateway: a listener that
// speaks PostgreSQL's wire protocol to clients (psql, drivers, IDEs),
// signs them in with a Stepgate access token as their password, and
// relays each session to one connection of its own to the real
// database. Every statement is classified (package sqlclass) and put to
// the decision core before it is relayed: a routine read flows; a
// statement whose class or labels ask for an authentication context the
// token's proofs do not meet, or that a guardrail refuses, is answered
// with an error and never reaches the database.
package dbgate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// Defaults of a Database.
const (
	DefaultStatementWait  = 2 * time.Minute
	DefaultMaxUpstream    = 20
	DefaultMaxMessageSize = 4 << 20
	// startupTimeout bounds the TLS handshake, startup and sign-in of a
	// client: a peer that opens connections and sends nothing cannot
	// hold goroutines and file descriptors for long.
	startupTimeout = 15 * time.Second
	// reverifyEvery is how often a session's token is checked again
	// (revocation, the user's roles): a revoked token runs no statement
	// more than this after its revocation.
	reverifyEvery = time.Second
	// maxStartups bounds the connections between accept and sign-in: a
	// flood of clients that connect and say nothing is turned away
	// rather than held until each one's startup timeout.
	maxStartups = 256
)

// Database is one database the gateway serves.
type Database struct {
	// Name is the database's name: the audience its tokens are issued
	// for, and the app policies target.
	Name string
	// Listen is the address clients connect to.
	Listen string
	// Upstream is the real database and the credentials the gateway
	// uses there; users never see them.
	Upstream Upstream
	// TLS is the server side of client TLS.
	TLS *tls.Config
	// InsecureLoopback lets a client on a loopback address send its
	// token without TLS. Tokens are bearer secrets: only for tests and
	// local development.
	InsecureLoopback bool
	// Labels name sensitive tables and columns (sqlclass.Label).
	Labels map[string][]string
	// Contexts maps "class:CLASS" or "label:LABEL" to the
	// authentication context a statement of that class (or a more
	// sensitive one) or hitting that label asks for.
	Contexts map[string]string
	// RefuseNoWhere refuses UPDATE and DELETE without a WHERE naming a
	// column of their table, and TRUNCATE.
	RefuseNoWhere bool
	// DestructiveNeedsElevation, when set, names the role a user must
	// hold through an active just-in-time elevation (store.Grant with an
	// Elevation) for DROP, ALTER TABLE ... DROP COLUMN, TRUNCATE, any
	// statement the classifier cannot read (which might be one of them)
	// and any that defines code run later (a function, a trigger).
	// A standing role or an active assignment does not count: the point
	// is that destroying data takes a deliberate, time-boxed, logged step.
	DestructiveNeedsElevation string
	// StatementWait bounds how long a statement waits for what it
	// depends on (an earlier pipelined result it is judged on).
	StatementWait time.Duration
	// StepUpWait bounds how long a statement that needs more proof waits
	// for its user to approve it in a browser.
	StepUpWait time.Duration
	// SingleUse makes each proof given for a held statement good for
	// that statement alone: every statement that asks for a context
	// waits for a proof made after it arrived, whatever the token or
	// earlier approvals proved.
	SingleUse bool
	// MaxUpstream bounds the connections open to the upstream at once;
	// a client past it is refused with SQLSTATE 53300.
	MaxUpstream int
	// MaxMessageSize bounds one protocol message from a client.
	MaxMessageSize int
}

// Upstream is how the gateway reaches the real database.
type Upstream struct {
	// Address is host:port.
	Address  string
	Database string
	User     string
	Password string
	// TLS, when set, is used to the upstream (sslmode verify-full).
	TLS *tls.Config
}

// TokenVerifier checks access tokens issued by Stepgate's provider:
// signature, lifetime, revocation and the roles claim.
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, raw string) (*oauth.AccessClaims, error)
}

// Users finds a token's user.
type Users interface {
	GetUser(ctx context.Context, id string) (store.User, error)
}

// Deps are the gateway's collaborators.
type Deps struct {
	Tokens     TokenVerifier
	Users      Users
	Policies   interface{ Load() *policy.Snapshot }
	Classifier *sqlclass.Classifier
	// StepUps hold a statement that needs more proof while its user
	// approves it in a browser; nil refuses it at once, saying what to
	// prove.
	StepUps StepUps
	// SignIns writes decisions to the sign-in log; when it fails the
	// statement is refused, never run unrecorded. Nil writes none.
	SignIns func(ctx context.Context, e audit.SignIn) error
	// AmendSignIn adds what happened once a logged statement ran (rows,
	// duration, error) to its entry; nil leaves entries as decided.
	AmendSignIn func(ctx context.Context, e audit.SignIn) error
	Log         *slog.Logger
	Now         func() time.Time
}

// Server serves one Database.
type Server struct {
	Deps
	db    Database
	slots chan struct{} // a token per upstream connection allowed
	// startups holds a token per connection not yet signed in.
	startups chan struct{}
	cancels  *cancelKeys
	checks   tokenChecks // the last check of each token in use

	mu       sync.Mutex // guards the fields below
	listener net.Listener
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// New returns a Server for db.
func New(db Database, deps Deps) (*Server, error) {
	if db.Name == "" || db.Upstream.Address == "" {
		return nil, errors.New("dbgate: a database needs a name and an upstream address")
	}
	if db.StatementWait <= 0 {
		db.StatementWait = DefaultStatementWait
	}
	if db.StepUpWait <= 0 {
		db.StepUpWait = DefaultStepUpWait
	}
	if db.MaxUpstream <= 0 {
		db.MaxUpstream = DefaultMaxUpstream
	}
	if db.MaxMessageSize <= 0 {
		db.MaxMessageSize = DefaultMaxMessageSize
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Classifier == nil {
		deps.Classifier = sqlclass.NewClassifier(sqlclass.CacheOptions{})
	}
	return &Server{Deps: deps, db: db, slots: make(chan struct{}, db.MaxUpstream), startups: make(chan struct{}, maxStartups), cancels: newCancelKeys(), conns: map[net.Conn]struct{}{}}, nil
}

// Name is the database's name.
func (s *Server) Name() string { return s.db.Name }

// Listen binds the database's listen address.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.db.Listen)
	if err != nil {
		return nil, fmt.Errorf("database %s: listen on %s: %w", s.db.Name, s.db.Listen, err)
	}
	return ln, nil
}

// Serve accepts clients on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.listener = ln
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		if !s.track(c) {
			c.Close()
			return nil
		}
		go func() {
			defer s.untrack(c)
			s.serveConn(c)
		}()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Close stops accepting, closes every client connection (each session's
// upstream connection with it) and waits for the sessions to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.listener != nil {
		s.listener.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
