package dbgate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
)

// SQLSTATEs the gateway answers with.
const (
	codeInvalidAuthorization = "28000" // invalid_authorization_specification
	codeInvalidPassword      = "28P01" // invalid_password
	codeInsufficientPrivs    = "42501" // insufficient_privilege
	codeProtocolViolation    = "08P01"
	codeTooManyConnections   = "53300"
	codeConnectionFailure    = "08006"
	codeAdminShutdown        = "57P01" // admin_shutdown
)

// client is a signed-in client before its session starts.
type client struct {
	conn   net.Conn
	be     *pgproto3.Backend
	addr   netip.Addr
	token  string
	params map[string]string
	// signedIn is who the token signed in, as of its first check; the
	// session keeps the checks after it (session.ident).
	signedIn *identity
}

// identity is what one check of a session's token found: the user (with
// the roles and grants they hold now), the token's claims, and when.
type identity struct {
	user     store.User
	claims   *oauth.AccessClaims
	verified time.Time
}

// serveConn runs one client connection from its first byte to its end.
func (s *Server) serveConn(raw net.Conn) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	select {
	case s.startups <- struct{}{}:
	default:
		return // too many clients signing in at once
	}
	_ = raw.SetDeadline(time.Now().Add(startupTimeout))
	c, ok := s.startup(ctx, raw)
	<-s.startups
	if !ok {
		return
	}
	_ = c.conn.SetDeadline(time.Time{})
	s.runSession(ctx, c)
}

// startup reads the client's startup packets, upgrading to TLS when asked,
// and signs the client in. ok is false when the connection is done (a
// cancel request, a refusal).
func (s *Server) startup(ctx context.Context, conn net.Conn) (*client, bool) {
	c := &client{conn: conn, addr: peerAddr(conn)}
	c.be = s.backend(conn)
	tlsDone := false
	for {
		msg, err := c.be.ReceiveStartupMessage()
		if err != nil {
			return nil, false
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if tlsDone || s.db.TLS == nil {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return nil, false
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return nil, false
			}
			tc := tls.Server(conn, s.db.TLS)
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, false
			}
			c.conn, tlsDone = tc, true
			c.be = s.backend(tc)
		case *pgproto3.GSSEncRequest:
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return nil, false
			}
		case *pgproto3.CancelRequest:
			s.cancel(ctx, m)
			return nil, false
		case *pgproto3.StartupMessage:
			return c, s.signIn(ctx, c, m, tlsDone)
		default:
			return nil, false
		}
	}
}

func (s *Server) backend(conn net.Conn) *pgproto3.Backend {
	be := pgproto3.NewBackend(conn, conn)
	// A client's message claims its own length: without a bound, one
	// header claiming 1 GiB makes the gateway allocate it.
	be.SetMaxBodyLen(s.db.MaxMessageSize)
	return be
}

// signIn authenticates the client: its user name and, as the password,
// a Stepgate access token issued for this database to that user.
func (s *Server) signIn(ctx context.Context, c *client, m *pgproto3.StartupMessage, tlsDone bool) bool {
	c.params = m.Parameters
	username := m.Parameters["user"]
	if username == "" {
		s.refuseStartup(c, codeInvalidAuthorization, "no user name given: connect as your Stepgate user name")
		return false
	}
	if db := m.Parameters["database"]; db != "" && db != s.db.Name {
		s.refuseStartup(c, "3D000", fmt.Sprintf("this gateway serves the database %q, not %q: connect with dbname=%s", s.db.Name, db, s.db.Name))
		return false
	}
	// The password is a bearer token: asked for only inside TLS, so it
	// is never sent where anyone on the path can read and replay it. The
	// refusal comes before the password request, so a client that would
	// send it in the clear is never asked to.
	insecureOK := s.db.InsecureLoopback && c.addr.IsLoopback()
	if !tlsDone && !insecureOK {
		s.refuseStartup(c, codeInvalidAuthorization, "this gateway accepts tokens only over TLS: connect with sslmode=require (or verify-full)")
		return false
	}
	c.be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := c.be.Flush(); err != nil {
		return false
	}
	if err := c.be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return false
	}
	msg, err := c.be.Receive()
	if err != nil {
		return false
	}
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		s.refuseStartup(c, codeProtocolViolation, "expected a password message")
		return false
	}
	c.token = pw.Password
	id, err := s.checkToken(ctx, c.token, username)
	if err != nil {
		s.Log.Info("database sign-in refused", "database", s.db.Name, "user", username, "ip", c.addr.String(), "err", err)
		s.refuseStartup(c, codeInvalidPassword, err.Error())
		return false
	}
	c.signedIn = id
	return true
}

// errBadToken is what a client learns about a token that does not verify;
// which check failed goes to the log only.
var errBadToken = errors.New("the password is not a valid Stepgate access token (invalid, expired or revoked): get a new one and connect again")

// checkToken verifies the token and that it is this database's and the
// named user's: a token issued for another app (another database, a web
// app) is never a key to this one, and a user cannot sign in under
// another's name with their own token.
func (s *Server) checkToken(ctx context.Context, token, username string) (*identity, error) {
	claims, err := s.Tokens.VerifyAccessToken(ctx, token)
	if err != nil {
		var ended *oauth.RoleEndedError
		if errors.As(err, &ended) {
			return nil, fmt.Errorf("the token carries the role %s, which the user no longer holds: get a new token", ended.Role)
		}
		return nil, errBadToken
	}
	if !slices.Contains(claims.Audience, s.db.Name) {
		return nil, fmt.Errorf("the token was not issued for the database %s: get a token for it and connect again", s.db.Name)
	}
	u, err := s.Users.GetUser(ctx, claims.Subject)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errors.New("the token's user does not exist")
		}
		return nil, fmt.Errorf("look up the token's user: %w", err)
	}
	if u.Username != username {
		return nil, fmt.Errorf("the token was issued to another user than %q: connect with your own user name", username)
	}
	if u.Disabled {
		return nil, errors.New("the account is disabled")
	}
	return &identity{user: u, claims: claims, verified: s.Now()}, nil
}

// refuseStartup answers a client that may not start a session.
func (s *Server) refuseStartup(c *client, code, msg string) {
	c.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	_ = c.be.Flush()
}

func peerAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
