package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// cli holds what every command shares: streams and global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
	flags          config.Flags
	// now is the clock What-If evaluates at.
	now    func() time.Time
	reason string // --reason, recorded in the audit trail
	// st is the store a command is running against, for the audit trail.
	st store.Store
	// configDir, when set, replaces the user's configuration directory
	// (where `login` keeps tokens); http and sleep, when set, replace
	// the HTTP client and the wait between polls.
	configDir string
	http      *http.Client
	sleep     func(ctx context.Context, d time.Duration) error
	// lookPath and psqlRunner, when set, replace finding psql on PATH
	// and running it in place of this process (`stepgate psql`).
	lookPath   func(file string) (string, error)
	psqlRunner func(path string, args, env []string) error
}

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	root := c.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "stepgate: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks mistakes in the command line itself (exit code 2).
type usageError struct{ error }

func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "stepgate",
		Short:         "Step-up authentication server and identity-aware gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&c.configPath, "config", "", "configuration file (YAML)")
	pf.StringVar(&c.flags.DataDir, "data-dir", "", "data directory for the embedded database (default ./stepgate-data)")
	pf.StringVar(&c.flags.LogFormat, "log-format", "", "log format: text or json")
	pf.StringVar(&c.reason, "reason", "", "why, for the audit trail of changes (a ticket number, say)")
	root.AddCommand(c.serveCmd(), c.demoCmd(), c.versionCmd(), c.userCmd(), c.groupCmd(), c.roleCmd(),
		c.clientCmd(), c.keysCmd(), c.auditCmd(), c.logsCmd(), c.policyCmd(), c.whatifCmd(), c.gatewayCmd(), c.loginCmd(), c.psqlCmd())
	return root
}

// config resolves the configuration from file, flags and environment,
// printing warnings (unknown STEPGATE_* variables) to stderr.
func (c *cli) config() (config.Config, error) {
	cfg, warnings, err := config.ResolveFromOS(c.configPath, c.flags)
	for _, w := range warnings {
		fmt.Fprintf(c.stderr, "stepgate: warning: %s\n", w)
	}
	return cfg, err
}

func (c *cli) logger(cfg config.Config) *slog.Logger {
	return app.NewLogger(c.stderr, cfg.Log.Format, cfg.Log.Level)
}

// withStore runs fn against the configured store.
func (c *cli) withStore(ctx context.Context, fn func(cfg config.Config, s store.Store) error) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	s, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	c.st = s
	defer func() { c.st = nil }()
	return fn(cfg, s)
}

// record writes a change made from the command line to the audit trail,
// naming the operating-system user who ran the command.
func (c *cli) record(ctx context.Context, action, target string, after any) error {
	if c.st == nil {
		return nil
	}
	if _, err := audit.New(c.st, nil).Record(ctx, c.actor(), action, target, c.reason, nil, after); err != nil {
		return fmt.Errorf("the change was made, but writing the audit trail failed: %w", err)
	}
	return nil
}

// actor names who runs the command line, for the audit trail.
func (c *cli) actor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

// readSecret reads a password from stdin: everything up to EOF, without
// the trailing newline an `echo` or a here-string adds.
func (c *cli) readSecret() (string, error) {
	b, err := io.ReadAll(io.LimitReader(c.stdin, 64<<10))
	if err != nil {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", errors.New("no password on stdin; pipe it in, e.g. printf '%s' \"$PW\" | stepgate user add ... --password-stdin")
	}
	return pw, nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("expected %s, got %d argument(s)", what, len(args))}
		}
		return nil
	}
}
