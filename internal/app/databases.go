package app

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/dbgate"
	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
)

// buildDatabases makes a database gateway server for each configured
// database; Serve starts them.
func (a *App) buildDatabases() error {
	if len(a.Config.Databases) == 0 {
		return nil
	}
	classifier := sqlclass.NewClassifier(sqlclass.CacheOptions{})
	for i, c := range a.Config.Databases {
		path := fmt.Sprintf("databases[%d]", i)
		c.PublicAddress = PublicAddress(c, a.Config.Server.Issuer)
		db, err := DatabaseOptions(c, path, a.Config.Server.DataDir)
		if err != nil {
			return err
		}
		conn, err := DatabaseConnection(c, path, a.Config.Server.DataDir)
		if err != nil {
			return err
		}
		a.databaseConnections = append(a.databaseConnections, conn)
		policies, err := a.environmentPolicies(path+".environment", c.Environment)
		if err != nil {
			return err
		}
		srv, err := dbgate.New(db, dbgate.Deps{
			Tokens: a.OIDC, Users: a.Store, Policies: policies, Classifier: classifier,
			SignIns: a.writeSignIn, AmendSignIn: a.SignIns.Amend, Log: a.Log.With("database", c.Name), StepUps: a.OIDC,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		a.Databases = append(a.Databases, srv)
	}
	return nil
}

// DatabaseOptions translates one configured database into the gateway's
// options: the upstream's password read from its file or variable, the
// client certificate loaded or generated in dataDir.
func DatabaseOptions(c config.Database, path, dataDir string) (dbgate.Database, error) {
	pw, err := c.Upstream.Password(path+".upstream", os.Getenv)
	if err != nil {
		return dbgate.Database{}, err
	}
	db := dbgate.Database{
		Name: c.Name, Listen: c.Listen, InsecureLoopback: c.InsecureLoopback, Labels: c.Labels,
		Upstream:      dbgate.Upstream{Address: c.Upstream.Address, Database: c.Upstream.Database, User: c.Upstream.User, Password: pw},
		RefuseNoWhere: c.RefuseNoWhere, DestructiveNeedsElevation: c.DestructiveNeedsElevation, StatementWait: c.StatementWait.D(), MaxUpstream: c.MaxUpstreamConnections,
		StepUpWait: c.StepUpWait.D(), SingleUse: c.SingleUse,
		Contexts: map[string]string{},
	}
	for label, ctx := range c.LabelContexts {
		db.Contexts[dbgate.ContextLabelPrefix+label] = ctx
	}
	for class, ctx := range c.ClassContexts {
		db.Contexts[dbgate.ContextClassPrefix+class] = ctx
	}
	var cert tls.Certificate
	if c.TLS.CertFile != "" {
		cert, err = tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
	} else {
		if dataDir == "" {
			return dbgate.Database{}, fmt.Errorf("%s.tls: set cert_file and key_file, or server.data_dir to keep a generated certificate in", path)
		}
		host, _, _ := net.SplitHostPort(c.Listen)
		public, _, _ := net.SplitHostPort(c.PublicAddress)
		cert, _, err = dbgate.LoadOrCreateCert(dataDir, c.Name, []string{host, public})
	}
	if err != nil {
		return dbgate.Database{}, fmt.Errorf("%s.tls: %w", path, err)
	}
	db.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.Upstream.CAFile != "" {
		pem, err := os.ReadFile(c.Upstream.CAFile)
		if err != nil {
			return dbgate.Database{}, fmt.Errorf("%s.upstream.ca_file: %w", path, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return dbgate.Database{}, fmt.Errorf("%s.upstream.ca_file: no PEM certificate in %s", path, c.Upstream.CAFile)
		}
		db.Upstream.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return db, nil
}

// PublicAddress is the host:port clients connect to c at: its
// public_address, or its listen address with an unspecified host
// (0.0.0.0, ::, none) replaced by the issuer's host, which clients
// already reach.
func PublicAddress(c config.Database, issuer string) string {
	if c.PublicAddress != "" {
		return c.PublicAddress
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return c.Listen
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		if u, err := url.Parse(issuer); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
	}
	return net.JoinHostPort(host, port)
}

// DatabaseConnection is the connection information of c, whose
// PublicAddress is resolved, for the API: its address, and the
// certificate to verify the gateway with (tls.ca_file, or the generated
// certificate DatabaseOptions keeps in dataDir).
func DatabaseConnection(c config.Database, path, dataDir string) (api.Database, error) {
	host, portText, err := net.SplitHostPort(c.PublicAddress)
	if err != nil {
		return api.Database{}, fmt.Errorf("%s.public_address: %w", path, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return api.Database{}, fmt.Errorf("%s.public_address: port %q is not a number", path, portText)
	}
	out := api.Database{Name: c.Name, Host: host, Port: port, DBName: c.Name, SSLMode: "verify-full"}
	ca, key := c.TLS.CAFile, path+".tls.ca_file"
	if c.TLS.CertFile == "" {
		ca, key = filepath.Join(dataDir, "dbgate-"+c.Name+".crt"), path+".tls"
	}
	if ca == "" {
		return out, nil
	}
	caPEM, err := os.ReadFile(ca) //nolint:gosec // a path from the configuration
	if err != nil {
		return api.Database{}, fmt.Errorf("%s: %w", key, err)
	}
	if block, _ := pem.Decode(caPEM); block == nil {
		return api.Database{}, fmt.Errorf("%s: no PEM certificate in %s", key, ca)
	}
	out.CACertificate = string(caPEM)
	return out, nil
}

// serveDatabases binds every database's listener and serves it; stop
// closes them and their sessions.
func (a *App) serveDatabases() (stop func(), err error) {
	var listeners []net.Listener
	for _, srv := range a.Databases {
		ln, err := srv.Listen()
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return nil, err
		}
		listeners = append(listeners, ln)
	}
	for i, srv := range a.Databases {
		go func() {
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, net.ErrClosed) {
				a.Log.Error("database gateway stopped", "database", srv.Name(), "err", err)
			}
		}()
		a.Log.Info("database gateway is serving", "database", srv.Name(), "addr", listeners[i].Addr().String())
	}
	return a.closeDatabases, nil
}

// closeDatabases stops every database gateway server.
func (a *App) closeDatabases() {
	for _, srv := range a.Databases {
		srv.Close()
	}
}
