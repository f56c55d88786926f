package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

func (c *cli) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Work with conditional access policy files"}
	cmd.AddCommand(c.policyLintCmd(), c.policyExportCmd())
	return cmd
}

func (c *cli) policyExportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export [-o FILE]",
		Short: "Write the live policy set (policy files and documents created in the console) as one YAML file",
		Long: "Write the policy set the server enforces — every policy file of policy.files and every policy\n" +
			"document created in the admin console or the admin API — as one YAML document, for keeping in\n" +
			"git (GitOps). Load it back with policy.files.",
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return c.withStore(ctx, func(cfg config.Config, s store.Store) error {
				set, err := app.LoadPolicies(ctx, cfg, s, app.AppSources(cfg, s))
				if err != nil {
					return err
				}
				b, err := admin.ExportDocuments(set.Documents)
				if err != nil {
					return err
				}
				if out == "" {
					_, err = c.stdout.Write(b)
					return err
				}
				if err := os.WriteFile(out, b, 0o600); err != nil {
					return fmt.Errorf("write the export: %w", err)
				}
				fmt.Fprintf(c.stderr, "wrote %s (%s)\n", out, plural(len(set.Snapshot.Policies()), "policy", "policies"))
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	return cmd
}

func (c *cli) policyLintCmd() *cobra.Command {
	var strict bool
	cmd := &cobra.Command{
		Use:   "lint FILE|DIR... [--strict]",
		Short: "Check policy files and print every problem as file:line: key: message",
		Long: "Check policy files the way the server does when it loads them, and print every problem.\n" +
			"A directory stands for every *.yaml and *.yml file in it. Without --strict the check is\n" +
			"offline: names of users, groups, roles and apps are not looked up. With --strict they are\n" +
			"checked against the store the configuration names.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("give the policy files or directories to check, like: stepgate policy lint policies/")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var dir policy.Directory
			if strict {
				err := c.withStore(cmd.Context(), func(cfg config.Config, s store.Store) error {
					var err error
					dir, err = app.NewDirectory(cmd.Context(), s, app.AppSources(cfg, s))
					return err
				})
				if err != nil {
					return err
				}
			}
			set, err := app.CompilePolicies(args, dir)
			var probs policy.Problems
			if errors.As(err, &probs) {
				for _, p := range probs {
					fmt.Fprintln(c.stdout, p.String())
				}
				return fmt.Errorf("%s in the policy files; fix %s and run the lint again", plural(len(probs), "problem", "problems"), them(len(probs)))
			}
			if err != nil {
				return err
			}
			if len(set.Files) == 0 {
				return fmt.Errorf("no *.yaml or *.yml files in %v; give policy files or directories that contain them", args)
			}
			fmt.Fprintf(c.stdout, "ok: %s in %s\n", plural(len(set.Snapshot.Policies()), "policy", "policies"), plural(len(set.Files), "file", "files"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "also check user, group, role and app names against the store (needs --config or --data-dir)")
	return cmd
}

func (c *cli) whatifCmd() *cobra.Command {
	var w policy.WhatIf
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "whatif --user NAME --app APP [flags]",
		Short: "Show what the policies decide for a hypothetical sign-in, policy by policy",
		Long: "Evaluate a hypothetical request against the configured policy files (policy.files), with the\n" +
			"user's groups and roles from the store and the country from geoip.database, and show the\n" +
			"decision and every policy's result. The exit code is 0 whatever the decision.",
		Args: exactArgs(0, "no arguments (everything is a flag)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if w.User == "" && w.Client == "" {
				return usageError{errors.New("give --user NAME (or --client ID for a service client)")}
			}
			if w.App == "" && len(w.Contexts) == 0 && w.Action == "" {
				return usageError{errors.New("give what is being accessed: --app APP, --context ID or --action " + policy.ActionRegisterSecurityInfo)}
			}
			ctx := cmd.Context()
			return c.withStore(ctx, func(cfg config.Config, s store.Store) error {
				set, err := app.LoadPolicies(ctx, cfg, s, app.AppSources(cfg, s))
				if err != nil {
					return err
				}
				geo, err := app.OpenGeoIP(cfg)
				if err != nil {
					return err
				}
				if geo != nil {
					defer geo.Close()
				}
				elevation := &elevate.Service{Store: s, Roles: app.ElevationRoles(cfg.Elevation)}
				b := &access.Builder{GeoIP: geo, Eligible: app.EligibleRoles(elevation)}
				req, roles, err := b.WhatIf(ctx, s, &w, c.now())
				if errors.Is(err, access.ErrInvalidWhatIf) {
					return usageError{err}
				}
				if err != nil {
					return err
				}
				d := set.Snapshot.Evaluate(req, policy.EvaluateOptions{Explain: true})
				if asJSON {
					return c.printJSON(api.WhatIfAnswer{Decision: &d, Roles: roles})
				}
				if _, err = fmt.Fprint(c.stdout, policy.Explain(&d)); err != nil || roles == nil {
					return err
				}
				_, err = fmt.Fprint(c.stdout, explainRoles(roles))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&w.User, "user", "", "username to evaluate for")
	f.StringVar(&w.Client, "client", "", "service client id to evaluate for (instead of --user)")
	f.StringVar(&w.App, "app", "", "app (OIDC client or gateway app id) being signed in to")
	f.StringArrayVar(&w.Contexts, "context", nil, "authentication context the app asks for, like c2 (repeatable)")
	f.StringVar(&w.Action, "action", "", "user action: register-security-info or register-device")
	f.StringVar(&w.IP, "ip", "", "client IP address")
	f.StringVar(&w.Country, "country", "", "country code like DE (default: from --ip with geoip.database)")
	f.StringVar(&w.Platform, "platform", "", "windows, macos, linux, ios, android, chromeos or unknown")
	f.StringVar(&w.UserAgent, "user-agent", "", "User-Agent to take the platform from (when --platform is not given)")
	f.StringVar(&w.ClientApp, "client-app", "", "browser, mobile-desktop, service or legacy")
	f.StringVar(&w.DeviceID, "device-id", "", "device id")
	f.BoolVar(&w.DeviceCompliant, "device-compliant", false, "the device is marked compliant")
	f.StringVar(&w.DeviceTrustType, "device-trust-type", "", "managed or registered")
	f.StringVar(&w.SignInRisk, "sign-in-risk", "", "none, low, medium or high")
	f.StringVar(&w.UserRisk, "user-risk", "", "none, low, medium or high")
	f.StringVar(&w.Auth, "auth", "", "the session's sign-in history, like pwd@-5m,totp@-2m")
	f.StringVar(&w.PasswordChanged, "password-changed", "", "when the password was changed, like -2m or an RFC 3339 time")
	f.StringArrayVar(&w.Terms, "terms", nil, "id of terms of use the user has accepted (repeatable)")
	f.StringVar(&w.Statement.Class, "statement-class", "", "a SQL statement through the database gateway (--app is the database): session, read, utility, write, ddl, privilege or unknown")
	f.StringVar(&w.Statement.Command, "statement-command", "", `the statement's command, like DELETE or "DROP TABLE"`)
	f.StringArrayVar(&w.Statement.Tables, "statement-table", nil, "a table the statement names, table or schema.table (repeatable)")
	f.StringArrayVar(&w.Statement.Labels, "statement-label", nil, "a label of the database the statement hits, like pii (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the decision as JSON")
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// explainRoles is the What-If's account of the user's roles: those the
// policies were evaluated with, which of them are elevated and until
// when, and those the user could activate.
func explainRoles(r *access.WhatIfRoles) string {
	var b strings.Builder
	fmt.Fprintf(&b, "roles active: %s\n", dash(strings.Join(r.Active, ", ")))
	elevated := make([]string, 0, len(r.Elevated))
	for _, e := range r.Elevated {
		elevated = append(elevated, e.Role+" until "+e.Until.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "  elevated: %s\n", dash(strings.Join(elevated, ", ")))
	fmt.Fprintf(&b, "roles eligible, not active: %s\n", dash(strings.Join(r.Eligible, ", ")))
	return b.String()
}
