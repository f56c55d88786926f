package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

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
		db, err := DatabaseOptions(c, path, a.Config.Server.DataDir)
		if err != nil {
			return err
		}
		srv, err := dbgate.New(db, dbgate.Deps{
			Tokens: a.OIDC, Users: a.Store, Policies: a.Policies, Classifier: classifier,
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
		cert, _, err = dbgate.LoadOrCreateCert(dataDir, c.Name, []string{host})
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
