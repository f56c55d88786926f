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
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/demo"
)

func (c *cli) demoCmd() *cobra.Command {
	listen := "127.0.0.1:8080"
	cmd := &cobra.Command{
		Use:   "demo [--listen 127.0.0.1:8080] [--data-dir DIR]",
		Short: "Run a complete demo: Stepgate with seeded users and policies in front of a sample bank",
		Long: `Run a complete demo: Stepgate with seeded users, policies and a sample
bank behind its gateway, with nothing else installed.

Stepgate answers at http://localhost:PORT and the bank at
http://bank.localhost:PORT (browsers resolve *.localhost to this machine).
The demo keeps its data in ` + demo.DefaultDataDir + ` (or --data-dir), so it can be
stopped and started again; delete the directory to start from scratch.
It builds its own configuration and ignores --config and STEPGATE_*
variables. Its passwords are printed for all to see, so it listens on
loopback addresses only.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
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
				self: currentInvocation().command(), out: c.stdout, logOut: c.stderr,
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", listen, "loopback address for Stepgate and the bank (the bank is http://bank.localhost on the same port)")
	return cmd
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
	cfg, err := demo.Config(demo.Params{
		Listen: d.ln.Addr().String(), DataDir: d.dataDir, LogFormat: d.logFormat,
		BankUpstream: "http://" + bankLn.Addr().String(),
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

	printDemo(d, cfg.Server.Issuer, bankURL, bankLn.Addr().String(), seeded)
	stop := reloadOnHangup(ctx, a)
	defer stop()
	return a.Serve(ctx, d.ln)
}

// printDemo tells the reader where everything is and how to sign in.
func printDemo(d demoRun, issuer, bankURL, bankAddr string, s demo.Seeded) {
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
