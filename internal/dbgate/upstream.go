package dbgate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// upstreamConnectTimeout bounds dialling and signing in to the upstream.
const upstreamConnectTimeout = 10 * time.Second

// pinnedParams are the settings every upstream session starts with,
// whatever the client asked for: the classifier reads text as UTF-8
// with standard-conforming strings, and a server reading it otherwise
// (SJIS, backslash escapes in plain strings) could see a DROP where the
// classifier saw a harmless string.
var pinnedParams = map[string]string{
	"client_encoding":             "UTF8",
	"standard_conforming_strings": "on",
}

// passedParams are the startup parameters a client may set on its
// upstream session. Everything else is dropped: "options" can set any
// setting (-c role=..., -c search_path=...), and "replication" opens a
// replication session.
var passedParams = []string{"application_name", "DateStyle", "TimeZone", "IntervalStyle", "extra_float_digits"}

// upstreamConn is a session's connection to the real database.
type upstreamConn struct {
	*pgconn.HijackedConn
	// builtinsShadowed: the session starts with pg_catalog after another
	// schema on its search_path.
	builtinsShadowed bool
}

// connectUpstream opens a session's own connection to the real database
// with the gateway's credentials, and takes over its socket.
func (s *Server) connectUpstream(ctx context.Context, clientParams map[string]string) (upstreamConn, error) {
	host, portText, err := net.SplitHostPort(s.db.Upstream.Address)
	if err != nil {
		return upstreamConn{}, fmt.Errorf("upstream address: %w", err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return upstreamConn{}, fmt.Errorf("upstream port %q: %w", portText, err)
	}
	sslmode := "sslmode=prefer"
	if s.db.Upstream.TLS != nil {
		sslmode = "sslmode=verify-full"
	}
	cfg, err := pgconn.ParseConfig(sslmode)
	if err != nil {
		return upstreamConn{}, err
	}
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.Database, cfg.User, cfg.Password = s.db.Upstream.Database, s.db.Upstream.User, s.db.Upstream.Password
	cfg.Fallbacks = nil
	if s.db.Upstream.TLS != nil {
		tc := s.db.Upstream.TLS.Clone()
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		cfg.TLSConfig = tc
	} else if cfg.TLSConfig != nil {
		cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // sslmode=prefer: the upstream's password travels as SCRAM
		cfg.Fallbacks = []*pgconn.FallbackConfig{{Host: host, Port: uint16(port)}}
	}
	cfg.ConnectTimeout = upstreamConnectTimeout
	// Environment variables (PGOPTIONS and the like) must not add
	// settings behind the configuration's back.
	cfg.RuntimeParams = map[string]string{}
	for _, k := range passedParams {
		if v, ok := clientParams[k]; ok && !strings.ContainsRune(v, 0) {
			cfg.RuntimeParams[k] = v
		}
	}
	for k, v := range pinnedParams {
		cfg.RuntimeParams[k] = v
	}
	ctx, stop := context.WithTimeout(ctx, upstreamConnectTimeout)
	defer stop()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return upstreamConn{}, err
	}
	shadowed, err := builtinsShadowed(ctx, pc)
	if err == nil {
		err = pc.SyncConn(ctx)
	}
	if err != nil {
		pc.Close(ctx)
		return upstreamConn{}, err
	}
	hc, err := pc.Hijack()
	return upstreamConn{HijackedConn: hc, builtinsShadowed: shadowed}, err
}

// builtinsShadowed reports whether the session starts with pg_catalog
// after another schema on its search_path, so that an unqualified
// function may be someone's own. A SET search_path is seen by the
// classifier, but one statement, approved once, can make it every later
// session's: "ALTER ROLE CURRENT_USER SET search_path = evil,
// pg_catalog" (or ALTER DATABASE) is applied when a session starts,
// where the classifier would trust lower() to be the built-in one.
// (client_encoding and standard_conforming_strings set that way are
// overridden by the startup parameters.)
func builtinsShadowed(ctx context.Context, pc *pgconn.PgConn) (bool, error) {
	res, err := pc.Exec(ctx, "SELECT (pg_catalog.current_schemas(true))[1] = 'pg_catalog'").ReadAll()
	if err != nil {
		return false, fmt.Errorf("read the upstream session's search_path: %w", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return false, errors.New("read the upstream session's search_path: no answer")
	}
	return string(res[0].Rows[0][0]) != "t", nil
}
