package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/demo"
)

func (c *cli) demoCmd() *cobra.Command {
	listen := "127.0.0.1:8080"
	var withPostgres string
	cmd := &cobra.Command{
		Use:   "demo [--listen 127.0.0.1:8080] [--data-dir DIR] [--with-postgres[=URL]]",
		Short: "Run a complete demo: Stepgate with seeded users and policies in front of a sample bank",
		Long: `Run a complete demo: Stepgate with seeded users, policies and a sample
bank behind its gateway, with nothing else installed.

Stepgate answers at http://localhost:PORT and the bank at
http://bank.localhost:PORT (browsers resolve *.localhost to this machine).
The demo keeps its data in ` + demo.DefaultDataDir + ` (or --data-dir), so it can be
stopped and started again; delete the directory to start from scratch.
It builds its own configuration and ignores --config and STEPGATE_*
variables. Its passwords are printed for all to see, so it listens on
loopback addresses only.

--with-postgres adds the bank's PostgreSQL database behind Stepgate's
database gateway ("stepgate psql bank"). Without a URL, the demo starts
a private PostgreSQL of its own from the local PostgreSQL programs
(Debian: apt install postgresql), on a loopback port, and deletes it
when it stops; as root, it runs it as the postgres system user. With a
URL (--with-postgres=postgres://USER@HOST:5432/postgres), it uses that
server: the URL's role must be able to create databases and roles. Leave
the password out of the URL, where other users of the machine can read
it in the process list: PGPASSWORD or ~/.pgpass supply it, as for psql.
Either way the demo creates the database stepgate_demo_bank and the role
stepgate_demo_bank_gateway afresh at every start. Without the flag the
demo starts no database server (it would be a surprise on a machine
where PostgreSQL is installed for something else); it says how to add
one when PostgreSQL is installed.`,
		Args: demoArgs(&withPostgres),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				withPostgres = args[0]
			}
			if c.configPath != "" {
				return usageError{errors.New("the demo builds its own configuration; run it without --config, or use stepgate serve --config")}
			}
			dir := c.flags.DataDir
			if dir == "" {
				dir = demo.DefaultDataDir
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w; choose another address with --listen, like 127.0.0.1:8081", listen, err)
			}
			defer ln.Close()
			if !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
				return usageError{fmt.Errorf("--listen %s is not a loopback address; the demo's passwords are public, so it listens on 127.0.0.1 or ::1 only", listen)}
			}
			return runDemo(cmd.Context(), demoRun{
				ln: ln, dataDir: dir, defaultDir: c.flags.DataDir == "", logFormat: c.flags.LogFormat,
				self: currentInvocation().command(), out: c.stdout, logOut: c.stderr, postgres: withPostgres,
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", listen, "loopback address for Stepgate and the bank (the bank is http://bank.localhost on the same port)")
	cmd.Flags().StringVar(&withPostgres, "with-postgres", "", "add the bank's PostgreSQL database: alone, on a private PostgreSQL the demo starts; =URL, on that server")
	cmd.Flags().Lookup("with-postgres").NoOptDefVal = privatePostgres
	return cmd
}

// defaultIssuer is the issuer of the demo on its default address.
const defaultIssuer = "http://localhost:8080"

// privatePostgres is --with-postgres without a URL: the demo starts a
// PostgreSQL of its own.
const privatePostgres = "private"

// demoArgs accepts no argument, except the URL of --with-postgres
// written after a space (--with-postgres postgres://…), which the flag
// parser, since the flag may stand alone, reads as an argument.
func demoArgs(withPostgres *string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 && *withPostgres == privatePostgres && isPostgresURL(args[0]) {
			return nil
		}
		if len(args) == 1 && isPostgresURL(args[0]) {
			return usageError{fmt.Errorf("unexpected argument %q; to use that server, write --with-postgres=%s", args[0], args[0])}
		}
		return exactArgs(0, "no arguments")(cmd, args)
	}
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// demoRun is one run of the demo.
type demoRun struct {
	ln      net.Listener
	dataDir string
	// defaultDir says dataDir is demo.DefaultDataDir, which "stepgate user
	// totp-code --demo" finds by itself.
	defaultDir bool
	logFormat  string
	// self is the command that runs this program again, as the reader
	// can paste it ("go run ./cmd/stepgate" when started that way);
	// "stepgate" when empty.
	self string
	// out gets the welcome text, logOut the server's log.
	out, logOut io.Writer
	// postgres asks for the bank database: "" none, privatePostgres on
	// a PostgreSQL the demo starts, else the URL of a server to use.
	postgres string
}

// runDemo seeds the demo, starts the bank on its own loopback port and
// serves Stepgate on d.ln until ctx ends; both then shut down
// gracefully.
func runDemo(ctx context.Context, d demoRun) error {
	bankLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the demo bank: %w", err)
	}
	defer bankLn.Close()
	bankDB, stopPostgres, err := startBankDatabase(ctx, d)
	if err != nil {
		return err
	}
	defer stopPostgres()
	cfg, err := demo.Config(demo.Params{
		Listen: d.ln.Addr().String(), DataDir: d.dataDir, LogFormat: d.logFormat,
		BankUpstream: "http://" + bankLn.Addr().String(), BankDatabase: bankDB,
	})
	if err != nil {
		return err
	}
	log := app.NewLogger(d.logOut, cfg.Log.Format, cfg.Log.Level)
	seeded, err := demo.Seed(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("seed the demo in %s: %w; delete the directory to start from scratch", d.dataDir, err)
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()

	bankURL := demo.BankURL(cfg.Server.Port())
	bank, err := demo.NewBank(demo.BankOptions{
		Issuer: cfg.Server.Issuer, Upstream: "http://" + bankLn.Addr().String(), PublicURL: bankURL, Log: log,
		// The bound address rather than the issuer's "localhost", which
		// may resolve to ::1 where nothing listens.
		JWKSURL: "http://" + d.ln.Addr().String() + "/oauth2/jwks",
	})
	if err != nil {
		return err
	}
	bankSrv := &http.Server{Handler: bank, ReadHeaderTimeout: 10 * time.Second}
	bankDone := make(chan error, 1)
	go func() { bankDone <- bankSrv.Serve(bankLn) }()
	defer func() {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = bankSrv.Shutdown(shut)
		if err := <-bankDone; !errors.Is(err, http.ErrServerClosed) {
			log.Warn("the demo bank stopped", "err", err)
		}
	}()

	printDemo(d, cfg.Server.Issuer, bankURL, bankLn.Addr().String(), seeded, bankDB)
	stop := reloadOnHangup(ctx, a)
	defer stop()
	return a.Serve(ctx, d.ln)
}

// printDemo tells the reader where everything is and how to sign in.
func printDemo(d demoRun, issuer, bankURL, bankAddr string, s demo.Seeded, bankDB *demo.BankDatabase) {
	self := cmp.Or(d.self, "stepgate")
	where := "--demo"
	if !d.defaultDir {
		where = "--data-dir " + shellQuote(d.dataDir)
	}
	codeCmd := self + " user totp-code alice " + where
	w := d.out
	fmt.Fprintf(w, "\nStepgate demo is running. Stop it with Ctrl-C.\n\n")
	fmt.Fprintf(w, "  Stepgate   %s\n", issuer)
	fmt.Fprintf(w, "  Console    %s/admin   (sign in as admin; changes need admin's passkey)\n", issuer)
	fmt.Fprintf(w, "  Bank       %s/   (through Stepgate's gateway; the bank app itself is on %s and refuses requests that bypass it)\n\n", bankURL, bankAddr)
	fmt.Fprintf(w, "Users (username / password):\n")
	for _, u := range demo.Users {
		fmt.Fprintf(w, "  %-6s %-22s %s\n", u.Username, u.Password, u.About)
	}
	fmt.Fprintf(w, "\nalice's authenticator app secret (TOTP, base32): %s\n", s.AliceTOTPSecret)
	fmt.Fprintf(w, "get alice's current code with: %s\n", codeCmd)
	if s.AdminPass != "" {
		fmt.Fprintf(w, "admin's temporary access pass: %s (until %s)\n", s.AdminPass, s.AdminPassExpires.Local().Format("15:04 MST"))
		fmt.Fprintf(w, "  sign in as admin at %s/account/security, enter the pass, then add a passkey\n", issuer)
	}
	fmt.Fprintf(w, "a password alone adds no sign-in method; give bob a pass with: %s\n\n", self+" user tap bob --lifetime 1h "+where)
	printBankDatabase(d, issuer, bankDB)
	fmt.Fprintf(w, "API client: %s / %s (client_credentials)\n", demo.BankApp, demo.BankClientSecret)
	fmt.Fprintf(w, "Policies:   %s (edit it and send SIGHUP to reload; it is rewritten at every start)\n", demo.PolicyPath(d.dataDir))
	fmt.Fprintf(w, "Data:       %s (kept between runs; delete it to start over)\n\n", d.dataDir)
}

// demoDataDir is the data directory "--demo" stands for, once it is
// known to hold a demo.
func demoDataDir() (string, error) {
	if _, err := os.Stat(demo.PolicyPath(demo.DefaultDataDir)); err != nil {
		return "", fmt.Errorf("no demo in %s: start one here with: %s demo (for a demo started with --data-dir DIR, pass --data-dir DIR instead of --demo)", demo.DefaultDataDir, currentInvocation().command())
	}
	return demo.DefaultDataDir, nil
}

// startBankDatabase makes the bank database d asks for: on a private
// PostgreSQL the demo starts (stop stops it), or on the server of the
// URL given. Without --with-postgres it makes none.
func startBankDatabase(ctx context.Context, d demoRun) (*demo.BankDatabase, func(), error) {
	noop := func() {}
	if d.postgres == "" {
		return nil, noop, nil
	}
	if err := os.MkdirAll(d.dataDir, 0o700); err != nil {
		return nil, noop, fmt.Errorf("create the demo data directory: %w", err)
	}
	adminURL, stop := d.postgres, noop
	if d.postgres == privatePostgres {
		bin := demo.FindPostgres()
		if bin == "" {
			return nil, noop, errors.New("--with-postgres: no local PostgreSQL found (initdb and pg_ctl, in /usr/lib/postgresql/*/bin or the PATH); " +
				"install it (Debian: apt install postgresql), or give a server: --with-postgres=postgres://USER@HOST:5432/postgres")
		}
		fmt.Fprintf(d.out, "Starting a private PostgreSQL for the bank database (%s)...\n", bin)
		cluster, err := demo.StartCluster(ctx, bin, d.dataDir)
		if err != nil {
			return nil, noop, fmt.Errorf("--with-postgres: %w", err)
		}
		adminURL = cluster.URL()
		stop = func() {
			if err := cluster.Stop(); err != nil {
				fmt.Fprintf(d.logOut, "stopping the demo's PostgreSQL: %v\n", err)
			}
		}
	}
	listen, err := demo.GatewayListen()
	if err == nil {
		var db demo.BankDatabase
		if db, err = demo.Provision(ctx, adminURL, d.dataDir, listen, demo.BankProvision{}); err == nil {
			return &db, stop, nil
		}
	}
	stop()
	return nil, noop, fmt.Errorf("--with-postgres: %w", err)
}

// printBankDatabase says how to reach the bank database, or, when
// PostgreSQL is installed here and the demo runs without it, how to add
// it.
func printBankDatabase(d demoRun, issuer string, db *demo.BankDatabase) {
	self := cmp.Or(d.self, "stepgate")
	w := d.out
	psql, login := self+" psql bank", self+" login --database bank --print-env"
	if issuer != defaultIssuer {
		// Without --issuer the command asks the issuer of the default
		// configuration, the demo's on its default address.
		psql = self + " psql --issuer " + issuer + " bank"
		login = self + " login --issuer " + issuer + " --database bank --print-env"
	}
	if db == nil {
		if demo.FindPostgres() != "" {
			fmt.Fprintf(w, "PostgreSQL is installed here: %s demo --with-postgres adds the bank's database behind the database gateway (%s).\n\n", self, psql)
		}
		return
	}
	cert := filepath.Join(d.dataDir, "dbgate-"+demo.BankDatabaseName+".crt")
	if abs, err := filepath.Abs(cert); err == nil {
		cert = abs
	}
	host, port, _ := net.SplitHostPort(db.Listen)
	fmt.Fprintf(w, "Bank database (PostgreSQL through Stepgate's database gateway on %s):\n", db.Listen)
	fmt.Fprintf(w, "  connect:   %s   (sign in as alice; reading customers.ssn or .email asks for her authenticator app)\n", psql)
	fmt.Fprintf(w, "  any client: user = your Stepgate user, password = an access token for \"bank\" (%s prints both):\n", login)
	fmt.Fprintf(w, "             PGPASSWORD=TOKEN psql \"host=%s port=%s dbname=bank user=alice sslmode=verify-full sslrootcert=%s\"\n", host, port, cert)
	fmt.Fprintf(w, "  upstream:  database %s on %s (role %s; created afresh at every start)\n\n", db.Upstream.Database, db.Upstream.Address, db.Upstream.User)
}
