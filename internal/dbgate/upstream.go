package dbgate

import (
	"context"
	"crypto/tls"
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

// connectUpstream opens a session's own connection to the real database
// with the gateway's credentials, and takes over its socket.
func (s *Server) connectUpstream(ctx context.Context, clientParams map[string]string) (*pgconn.HijackedConn, error) {
	host, portText, err := net.SplitHostPort(s.db.Upstream.Address)
	if err != nil {
		return nil, fmt.Errorf("upstream address: %w", err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("upstream port %q: %w", portText, err)
	}
	sslmode := "sslmode=prefer"
	if s.db.Upstream.TLS != nil {
		sslmode = "sslmode=verify-full"
	}
	cfg, err := pgconn.ParseConfig(sslmode)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(ctx)
		return nil, err
	}
	return pc.Hijack()
}
