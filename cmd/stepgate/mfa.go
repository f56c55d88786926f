package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/otp"
	"github.com/stepgate/stepgate/internal/authn/push"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/demo"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/revoke"
	"github.com/stepgate/stepgate/internal/store"
)

// withMethods runs fn with the user named name and the deployment's
// authentication methods.
func (c *cli) withMethods(cmd *cobra.Command, name string, fn func(st store.Store, m *app.Methods, u store.User) error) error {
	return c.withStore(cmd.Context(), func(cfg config.Config, st store.Store) error {
		svc, err := app.NewUsers(cfg, st)
		if err != nil {
			return err
		}
		u, err := svc.Get(cmd.Context(), name)
		if err != nil {
			return err
		}
		m, err := app.NewMethods(cfg, st, c.logger(cfg), nil)
		if err != nil {
			return err
		}
		return fn(st, m, u)
	})
}

// mfaCmds are the user subcommands for second factors.
func (c *cli) mfaCmds() []*cobra.Command {
	var asJSON bool
	totpCmd := &cobra.Command{
		Use:   "totp NAME [--json]",
		Short: "Register an authenticator app for a user; prints the secret and otpauth:// URI to load into the app",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withMethods(cmd, args[0], func(_ store.Store, m *app.Methods, u store.User) error {
				secret, uri, err := m.TOTP.EnrollNow(cmd.Context(), u, "Authenticator app")
				if err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "user.totp-enroll", "user:"+u.Username, nil); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(c.stdout).Encode(map[string]string{"user": u.Username, "secret": secret, "uri": uri}) //nolint:gosec // G117: printing the new secret to the administrator is the point
				}
				fmt.Fprintf(c.stdout, "secret: %s\nuri:    %s\n", secret, uri)
				return nil
			})
		},
	}
	totpCmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var inDemo bool
	codeCmd := &cobra.Command{
		Use:   "totp-code NAME [--demo]",
		Short: "Print the current code of a user's authenticator app (for demos and automated tests; it is what the app shows)",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if inDemo {
				if c.flags.DataDir != "" || c.configPath != "" {
					return usageError{errors.New("--demo stands for --data-dir " + demo.DefaultDataDir + "; give one or the other")}
				}
				dir, err := demoDataDir()
				if err != nil {
					return err
				}
				c.flags.DataDir = dir
			}
			return c.withMethods(cmd, args[0], func(st store.Store, m *app.Methods, u store.User) error {
				creds, err := st.ListCredentials(cmd.Context(), u.ID)
				if err != nil {
					return err
				}
				for _, cr := range creds {
					if cr.Type == totp.Name {
						code, err := m.TOTP.Code(u, cr)
						if err == nil {
							fmt.Fprintln(c.stdout, code)
						}
						return err
					}
				}
				return fmt.Errorf("user %s has no authenticator app; register one with: stepgate user totp %s", u.Username, u.Username)
			})
		},
	}

	codeCmd.Flags().BoolVar(&inDemo, "demo", false, "use the data of \"stepgate demo\" in "+demo.DefaultDataDir)

	recoveryCmd := &cobra.Command{
		Use:   "recovery-codes NAME",
		Short: "Generate a new set of ten recovery codes for a user (the old set stops working)",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withMethods(cmd, args[0], func(_ store.Store, m *app.Methods, u store.User) error {
				codes, err := m.Recovery.Generate(cmd.Context(), u)
				if err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "user.recovery-codes", "user:"+u.Username, nil); err != nil {
					return err
				}
				for _, code := range codes {
					fmt.Fprintln(c.stdout, code)
				}
				return nil
			})
		},
	}

	resetCmd := &cobra.Command{
		Use:   "reset-mfa NAME",
		Short: "Remove every registered method of a user except the password, and end the user's sessions",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withMethods(cmd, args[0], func(st store.Store, _ *app.Methods, u store.User) error {
				ctx := cmd.Context()
				creds, err := st.ListCredentials(ctx, u.ID)
				if err != nil {
					return err
				}
				for _, cr := range creds {
					if err := st.DeleteCredential(ctx, cr.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
				}
				// Sessions and tokens may rest on proofs made with what was
				// just removed: they all end now.
				if err := revoke.New(st, nil, nil).RevokeUser(ctx, u.ID, "mfa-reset"); err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "user.mfa-reset", "user:"+u.Username, map[string]int{"methods_removed": len(creds)}); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "removed %d method(s) of %s and ended the user's sessions\n", len(creds), u.Username)
				return nil
			})
		},
	}
	unlockCmd := &cobra.Command{
		Use:   "unlock NAME",
		Short: "Clear the failed-attempt lock of a user (after 100 consecutive failures it waits for this)",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withMethods(cmd, args[0], func(st store.Store, _ *app.Methods, u store.User) error {
				th := authn.NewThrottle(st, nil)
				// Every count of the user's: sign-in, step-up and the methods
				// that keep their own (one-time codes, push numbers).
				for _, key := range []string{"login:" + u.Username, "user:" + u.ID, otp.ThrottleKey(u.ID), push.ThrottleKey(u.ID)} {
					if err := th.Reset(cmd.Context(), key); err != nil {
						return err
					}
				}
				if err := c.record(cmd.Context(), "user.unlock", "user:"+u.Username, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "unlocked %s\n", u.Username)
				return nil
			})
		},
	}

	var compromised, dismiss, riskJSON bool
	riskCmd := &cobra.Command{
		Use:   "risk NAME [--json] | risk NAME --confirm-compromised | --dismiss",
		Short: "Show a user's risk and its detections (reported ones with their source), confirm the user compromised, or dismiss their risk",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if compromised && dismiss {
				return usageError{errors.New("give at most one of --confirm-compromised and --dismiss")}
			}
			return c.withStore(cmd.Context(), func(cfg config.Config, st store.Store) error {
				svc, err := app.NewUsers(cfg, st)
				if err != nil {
					return err
				}
				u, err := svc.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				k, err := app.NewRisk(cfg, st, nil, httpx.ClientIP{}, revoke.New(st, nil, nil), nil, c.logger(cfg))
				if err != nil {
					return err
				}
				if !compromised && !dismiss {
					return c.showRisk(cmd.Context(), k, u, riskJSON)
				}
				if err := k.SetUserRisk(cmd.Context(), u.ID, compromised); err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "user.risk-"+map[bool]string{true: "confirm-compromised", false: "dismiss"}[compromised], "user:"+u.Username, nil); err != nil {
					return err
				}
				if compromised {
					fmt.Fprintf(c.stdout, "%s confirmed compromised: user risk high, sessions and tokens revoked\n", u.Username)
				} else {
					fmt.Fprintf(c.stdout, "%s: user risk dismissed, with every detection behind it\n", u.Username)
				}
				return nil
			})
		},
	}
	riskCmd.Flags().BoolVar(&riskJSON, "json", false, "print the risk and its detections as JSON")
	riskCmd.Flags().BoolVar(&compromised, "confirm-compromised", false, "the account is in an attacker's hands")
	riskCmd.Flags().BoolVar(&dismiss, "dismiss", false, "the detections were false alarms (reported ones too)")
	return []*cobra.Command{totpCmd, codeCmd, recoveryCmd, resetCmd, unlockCmd, riskCmd, c.tapCmd()}
}

// tapCmd is "stepgate user tap": issue or revoke a temporary access pass.
func (c *cli) tapCmd() *cobra.Command {
	var (
		lifetime     time.Duration
		once, revoke bool
		inDemo       bool
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "tap NAME --lifetime 1h [--once] [--json] | tap NAME --revoke",
		Short: "Issue a temporary access pass: the user may add sign-in methods with it, and do nothing else (shown once)",
		Long: `Issue a temporary access pass for a user who has a password only, or who
lost every other method. On their security page, the pass lets them add
sign-in methods until it expires (--once: in one session only). It is
no password and no proof for any policy. It is printed once and stored
hashed; a user has at most one active pass. --revoke ends it at once.`,
		Args: exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if inDemo {
				if c.flags.DataDir != "" || c.configPath != "" {
					return usageError{errors.New("--demo stands for --data-dir " + demo.DefaultDataDir + "; give one or the other")}
				}
				dir, err := demoDataDir()
				if err != nil {
					return err
				}
				c.flags.DataDir = dir
			}
			if !revoke && lifetime == 0 {
				return usageError{errors.New("give the pass a lifetime, like --lifetime 1h (10m to 168h), or --revoke to end the active pass")}
			}
			return c.withMethods(cmd, args[0], func(_ store.Store, m *app.Methods, u store.User) error {
				ctx := cmd.Context()
				if revoke {
					if err := m.Passes.Revoke(ctx, u.ID); err != nil {
						return fmt.Errorf("%s: %w", u.Username, err)
					}
					if err := c.record(ctx, "user.tap-revoke", "user:"+u.Username, nil); err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "revoked the temporary access pass of %s\n", u.Username)
					return nil
				}
				if u.Disabled {
					return fmt.Errorf("user %s is disabled; enable the account first with: stepgate user enable %s", u.Username, u.Username)
				}
				code, p, err := m.Passes.Issue(ctx, u.ID, c.actor(), lifetime, once)
				if errors.Is(err, tap.ErrActive) {
					return fmt.Errorf("%s already has an active temporary access pass; end it first with: stepgate user tap %s --revoke", u.Username, u.Username)
				}
				if err != nil {
					return err
				}
				if err := c.record(ctx, "user.tap-issue", "user:"+u.Username, map[string]any{"expires_at": p.ExpiresAt, "once": p.Once}); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(c.stdout).Encode(map[string]any{"user": u.Username, "pass": code, "expires_at": p.ExpiresAt, "once": p.Once}) //nolint:gosec // G117: printing the new pass to the administrator is the point
				}
				use := "until it expires"
				if once {
					use = "in one session"
				}
				fmt.Fprintf(c.stdout, "temporary access pass for %s: %s\nit lets them add sign-in methods on their security page %s, until %s; it is shown only now\n",
					u.Username, code, use, p.ExpiresAt.Format(time.RFC3339))
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&lifetime, "lifetime", 0, "how long the pass works (10m to 168h)")
	cmd.Flags().BoolVar(&once, "once", false, "the pass works once")
	cmd.Flags().BoolVar(&revoke, "revoke", false, "end the user's active pass")
	cmd.Flags().BoolVar(&inDemo, "demo", false, "use the data of \"stepgate demo\" in "+demo.DefaultDataDir)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagsMutuallyExclusive("revoke", "lifetime")
	cmd.MarkFlagsMutuallyExclusive("revoke", "once")
	return cmd
}
