package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/gateway"
)

func (c *cli) gatewayCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "gateway", Short: "Work with the gateway's routes and rules"}
	cmd.AddCommand(c.gatewayLintCmd())
	return cmd
}

func (c *cli) gatewayLintCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "lint [--config FILE]",
		Short: "Warn about gateway rules that application frameworks let requests around",
		Long: "Check the gateway rules of the configuration against the ways application frameworks extend\n" +
			"a path, and print every warning as key: message. It warns about a rule for one format of a\n" +
			"resource (/transfers.json: Rails and Spring serve /transfers with the same handler), a rule an\n" +
			"earlier rule hides (the first match wins), and a rule that lists methods but not POST\n" +
			"(frameworks run a POST with a _method form field as PUT, PATCH or DELETE, Rails and Express\n" +
			"as GET too), or an anonymous rule that lets POST in but not the path's other methods (the same\n" +
			"field takes it to them). The server logs the same warnings\n" +
			"when it starts. The exit code is 1 when there is a warning.",
		Args: exactArgs(0, "no arguments (the configuration comes from --config)"),
		RunE: func(*cobra.Command, []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			opts, err := app.GatewayOptions(cfg.Gateway)
			if err != nil {
				return err
			}
			warnings := gateway.Lint(opts)
			for _, w := range warnings {
				fmt.Fprintln(c.stdout, w.String())
			}
			if len(warnings) > 0 {
				return fmt.Errorf("%s in the gateway rules; fix %s and run the lint again", plural(len(warnings), "warning", "warnings"), them(len(warnings)))
			}
			rules := 0
			for _, r := range cfg.Gateway.Routes {
				rules += len(r.Rules)
			}
			fmt.Fprintf(c.stdout, "ok: %s, %s\n", plural(len(cfg.Gateway.Routes), "route", "routes"), plural(rules, "rule", "rules"))
			return nil
		},
	}
}
