package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/deadend"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

func (c *cli) policyDeadEndsCmd() *cobra.Command {
	var asJSON bool
	var env string
	cmd := &cobra.Command{
		Use:   "deadends [--json] [--env E]",
		Short: "List the users each enabled policy strands: in its scope, unable to ever meet it",
		Long: "Check every enabled policy of the live set (policy files and stored documents) against every\n" +
			"enabled user in its scope and the sign-in methods they have registered, and list those who can\n" +
			"never meet its grant, with counts per group and why (\"needs phishing-resistant; has password,\n" +
			"totp\"). Each is fixable (the user may register the missing method on their own, under the\n" +
			"registration rules) or stuck (an administrator must help: a temporary access pass, or a change\n" +
			"of the policy). Block policies refuse by design and are not listed. The exit code is 0 whatever\n" +
			"is found.",
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return c.withEnvironment(ctx, env, func(cfg config.Config, s store.Store, set app.PolicySet) error {
				rep, err := c.deadEnds(ctx, cfg, s, set.Snapshot)
				if err != nil {
					return err
				}
				if asJSON {
					return c.printJSON(rep)
				}
				return printDeadEnds(c.stdout, rep)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	envFlag(cmd, &env)
	return cmd
}

// deadEnds analyses snap, or the live set when snap is nil, over the
// store's users with the deployment's methods and registration rules.
func (c *cli) deadEnds(ctx context.Context, cfg config.Config, s store.Store, snap *policy.Snapshot) (deadend.Report, error) {
	if snap == nil {
		set, err := app.LoadPolicies(ctx, cfg, s, app.AppSources(cfg, s))
		if err != nil {
			return deadend.Report{}, err
		}
		snap = set.Snapshot
	}
	m, err := app.NewMethods(cfg, s, c.logger(cfg), nil)
	if err != nil {
		return deadend.Report{}, err
	}
	return app.DeadEnds(cfg, s, m, c.now).Analyze(ctx, snap)
}

// printDeadEnds writes the report as a table per policy that strands
// someone, and a line for the rest.
func printDeadEnds(w io.Writer, rep deadend.Report) error {
	none := 0
	for _, p := range rep.Policies {
		if len(p.Stranded) == 0 {
			none++
			continue
		}
		fmt.Fprintf(w, "%s (%s): %d of %d in scope stranded, %d fixable, %d stuck%s\n", p.Policy, p.Targets,
			len(p.Stranded), p.InScope, p.Fixable, p.Stuck, nobody(p))
		fmt.Fprintf(w, "  by group: %s\n", groupCounts(p.Groups))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  USER\tVERDICT\tWHY")
		for _, f := range p.Stranded {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Username, f.Verdict, f.Why)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if rep.Stranded() == 0 {
		_, err := fmt.Fprintf(w, "no dead ends: every one of %s in scope of the %s can meet it\n",
			plural(rep.Users, "enabled user", "enabled users"), plural(none, "enabled policy", "enabled policies"))
		return err
	}
	rest := ""
	if none > 0 {
		rest = "; no dead ends in " + plural(none, "other policy", "other policies")
	}
	_, err := fmt.Fprintf(w, "%s stranded%s\n", plural(rep.Stranded(), "user", "users"), rest)
	return err
}

func nobody(p deadend.PolicyReport) string {
	if p.Nobody() {
		return " (nobody in scope can meet it)"
	}
	return ""
}

// groupCounts writes "ops 3, eng 1, (no group) 2", most first.
func groupCounts(groups map[string]int) string {
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.SortFunc(names, func(a, b string) int {
		if groups[a] != groups[b] {
			return groups[b] - groups[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, g := range names {
		label := g
		if g == "" {
			label = "(no group)"
		}
		parts[i] = fmt.Sprintf("%s %d", label, groups[g])
	}
	return strings.Join(parts, ", ")
}

// lintDeadEnds warns, for policy lint --strict, about each enabled policy
// of snap that nobody in its scope can meet: an outage for everyone it is
// for. A warning does not fail the lint.
func (c *cli) lintDeadEnds(ctx context.Context, cfg config.Config, s store.Store, snap *policy.Snapshot) error {
	rep, err := c.deadEnds(ctx, cfg, s, snap)
	if err != nil {
		return err
	}
	for _, p := range rep.Policies {
		if !p.Nobody() {
			continue
		}
		f := p.Stranded[0]
		fmt.Fprintf(c.stdout, "warning: policy %s: nobody in scope can meet it (%s; %s: %s); see stepgate policy deadends\n",
			p.Policy, plural(p.InScope, "user", "users"), f.Username, f.Why)
	}
	return nil
}
