package main

import (
	"context"
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
	"github.com/stepgate/stepgate/internal/demo"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/scenario"
	"github.com/stepgate/stepgate/internal/store"
)

func (c *cli) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Work with conditional access policy files"}
	cmd.AddCommand(c.policyLintCmd(), c.policyExportCmd(), c.policyTestCmd(), c.policyDeadEndsCmd(),
		c.policyPromoteCmd(), c.policyRollbackCmd(), c.policyHistoryCmd())
	return cmd
}

// envFlag adds --env, the policy environment a command works on.
func envFlag(cmd *cobra.Command, env *string) {
	cmd.Flags().StringVar(env, "env", config.ProductionEnvironment, "the policy environment (production, or one of policy.environments)")
}

// loadEnvironment compiles the live set of the policy environment env;
// an environment the configuration does not define is a usage error.
func loadEnvironment(ctx context.Context, cfg config.Config, s store.Store, env string) (app.PolicySet, error) {
	if !cfg.Policy.HasEnvironment(env) {
		return app.PolicySet{}, usageError{fmt.Errorf("--env %s: no such policy environment; the environments are %s", env, strings.Join(cfg.Policy.EnvironmentNames(), ", "))}
	}
	return app.LoadEnvironment(ctx, cfg, env, s, app.AppSources(cfg, s))
}

// withEnvironment runs fn with the configuration, the store and the live
// set of the policy environment env.
func (c *cli) withEnvironment(ctx context.Context, env string, fn func(cfg config.Config, s store.Store, set app.PolicySet) error) error {
	return c.withStore(ctx, func(cfg config.Config, s store.Store) error {
		set, err := loadEnvironment(ctx, cfg, s, env)
		if err != nil {
			return err
		}
		return fn(cfg, s, set)
	})
}

func (c *cli) policyExportCmd() *cobra.Command {
	var out, env string
	cmd := &cobra.Command{
		Use:   "export [-o FILE] [--env E]",
		Short: "Write the live policy set (policy files and documents created in the console) as one YAML file",
		Long: "Write the policy set the server enforces — every policy file of policy.files and every policy\n" +
			"document created in the admin console or the admin API — as one YAML document, for keeping in\n" +
			"git (GitOps). Load it back with policy.files. With --env, the set of that policy environment\n" +
			"(its files and its stored documents), to load back with policy.environments.E.files.",
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withEnvironment(cmd.Context(), env, func(_ config.Config, _ store.Store, set app.PolicySet) error {
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
	envFlag(cmd, &env)
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
			"checked against the store the configuration names, and a policy that nobody in its scope can\n" +
			"ever meet with the methods they have registered is warned about (see stepgate policy deadends).",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("give the policy files or directories to check, like: stepgate policy lint policies/")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strict {
				_, err := c.lintFiles(args, nil)
				return err
			}
			ctx := cmd.Context()
			return c.withStore(ctx, func(cfg config.Config, s store.Store) error {
				dir, err := app.NewDirectory(ctx, s, app.AppSources(cfg, s))
				if err != nil {
					return err
				}
				set, err := c.lintFiles(args, dir)
				if err != nil {
					return err
				}
				return c.lintDeadEnds(ctx, cfg, s, set.Snapshot)
			})
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "also check user, group, role and app names against the store (needs --config or --data-dir)")
	return cmd
}

// lintFiles compiles the policy files of paths, looking names up in dir
// when it is not nil, and prints every problem, or a line that all is
// well.
func (c *cli) lintFiles(paths []string, dir policy.Directory) (app.PolicySet, error) {
	set, err := app.CompilePolicies(paths, dir)
	var probs policy.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			fmt.Fprintln(c.stdout, p.String())
		}
		return set, fmt.Errorf("%s in the policy files; fix %s and run the lint again", plural(len(probs), "problem", "problems"), them(len(probs)))
	}
	if err != nil {
		return set, err
	}
	if len(set.Files) == 0 {
		return set, fmt.Errorf("no *.yaml or *.yml files in %v; give policy files or directories that contain them", paths)
	}
	fmt.Fprintf(c.stdout, "ok: %s in %s\n", plural(len(set.Snapshot.Policies()), "policy", "policies"), plural(len(set.Files), "file", "files"))
	return set, nil
}

func (c *cli) policyTestCmd() *cobra.Command {
	var offline []string
	var inDemo bool
	var env string
	cmd := &cobra.Command{
		Use:   "test [FILE|DIR...] [--policies FILE|DIR]... [--demo] [--env E]",
		Short: "Run the scenario tests (*.tests.yaml) against the policies and report what no scenario exercised",
		Long: "Run every scenario of the scenario test files against the policy set and print each failure as\n" +
			"file:line: scenario NAME: expected X, got Y, with a diff. A directory stands for every *.tests.yaml\n" +
			"and *.tests.yml file in it; without arguments, the test files beside the files of policy.files are run.\n" +
			"The set is the configured one (policy.files and the documents stored by the console), with users,\n" +
			"their methods and the gateway routes of the configuration. With --policies, the given policy files\n" +
			"are tested offline instead, as policy lint checks them, and scenarios write their subject inline.\n" +
			"Exit code: 0 when every scenario passes, 1 when one fails, 2 when a test or policy file is malformed.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(offline) > 0 {
				set, err := app.CompilePolicies(offline, nil)
				if err != nil {
					return c.badPolicies(err)
				}
				if len(args) == 0 {
					args = scenario.Beside(offline)
				}
				return c.runScenarios(cmd, config.Config{}, app.ScenarioEnv(config.Config{}, nil, set, c.now), args)
			}
			ctx := cmd.Context()
			run := func(cfg config.Config, s store.Store) error {
				set, err := loadEnvironment(ctx, cfg, s, env)
				if err != nil {
					return c.badPolicies(err)
				}
				if len(args) == 0 { // the tests beside the environment's own files
					args = scenario.Beside(cfg.Policy.FilesOf(env))
				}
				return c.runScenarios(cmd, cfg, app.ScenarioEnv(cfg, s, set, c.now), args)
			}
			if inDemo {
				return c.withDemo(cmd, run)
			}
			return c.withStore(ctx, run)
		},
	}
	cmd.Flags().StringArrayVar(&offline, "policies", nil, "test these policy files or directories offline instead of the configured set (repeatable)")
	cmd.Flags().BoolVar(&inDemo, "demo", false, "test the policies of \"stepgate demo\" in "+demo.DefaultDataDir+" with its users and routes")
	envFlag(cmd, &env)
	return cmd
}

// withDemo runs fn with the configuration and store of the demo in
// demo.DefaultDataDir: its policy file, its bank route and its users.
func (c *cli) withDemo(cmd *cobra.Command, fn func(cfg config.Config, s store.Store) error) error {
	if c.flags.DataDir != "" || c.configPath != "" {
		return usageError{errors.New("--demo stands for the demo in " + demo.DefaultDataDir + "; give --demo or --config/--data-dir, not both")}
	}
	dir, err := demoDataDir()
	if err != nil {
		return err
	}
	// The port only names the bank's public address, which scenarios do
	// not use: they name the route.
	cfg, err := demo.Config(demo.Params{Listen: "127.0.0.1:8080", DataDir: dir, BankUpstream: "http://127.0.0.1:9"})
	if err != nil {
		return err
	}
	s, err := app.OpenStore(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(cfg, s)
}

// badPolicies prints the problems of a policy set that does not compile
// and returns the exit-2 error: there is nothing to test.
func (c *cli) badPolicies(err error) error {
	var probs policy.Problems
	if !errors.As(err, &probs) {
		return err
	}
	for _, p := range probs {
		fmt.Fprintln(c.stdout, p.String())
	}
	return usageError{fmt.Errorf("%s in the policy files; fix %s (stepgate policy lint shows the same) and run the tests again", plural(len(probs), "problem", "problems"), them(len(probs)))}
}

func (c *cli) runScenarios(cmd *cobra.Command, cfg config.Config, env scenario.Env, paths []string) error {
	rep, err := app.TestPolicies(cmd.Context(), cfg, env, paths)
	var probs policy.Problems
	switch {
	case errors.As(err, &probs):
		for _, p := range probs {
			fmt.Fprintln(c.stdout, p.String())
		}
		return usageError{fmt.Errorf("%s in the scenario test files; fix %s and run the tests again", plural(len(probs), "problem", "problems"), them(len(probs)))}
	case errors.Is(err, scenario.ErrNoTests):
		return usageError{fmt.Errorf("%w; write one beside the policies (see Testing policies with scenarios in docs/policy.md) or name the files", err)}
	case err != nil:
		return usageError{err}
	}
	rep.WriteFailures(c.stdout)
	rep.WriteSummary(c.stdout)
	if n := rep.Failures(); n > 0 {
		return fmt.Errorf("%s of %d failed", plural(n, "scenario", "scenarios"), len(rep.Results))
	}
	return nil
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
