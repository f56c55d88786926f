package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/deadend"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// withPolicies runs fn with the administrators' service for changes to
// the stored policies, over the configured store.
func (c *cli) withPolicies(cmd *cobra.Command, fn func(cfg config.Config, svc *admin.Service) error) error {
	ctx := cmd.Context()
	return c.withStore(ctx, func(cfg config.Config, s store.Store) error {
		svc, err := app.CommandLinePolicies(ctx, cfg, s)
		if err != nil {
			return err
		}
		svc.Deps.DeadEnds = func(ctx context.Context, snap *policy.Snapshot) (deadend.Report, error) {
			return c.deadEnds(ctx, cfg, s, snap)
		}
		return fn(cfg, svc)
	})
}

// changeOptions are the flags of a promotion or a rollback.
type changeOptions struct {
	yes           bool
	days          int
	overrideTests string
}

func (o *changeOptions) flags(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&o.yes, "yes", false, what+" without asking (for scripts)")
	cmd.Flags().IntVar(&o.days, "days", 7, "replay this many days of the sign-in log (1 to 90)")
	cmd.Flags().StringVar(&o.overrideTests, "override-tests", "", "go ahead although scenario tests fail, for this reason (audited)")
}

func (c *cli) policyPromoteCmd() *cobra.Command {
	var o changeOptions
	cmd := &cobra.Command{
		Use:   "promote FROM TO --reason R [--yes] [--days N] [--override-tests R]",
		Short: "Make the stored policy documents of one environment (staging) those of another (production)",
		Long: "Show what promoting the policy documents stored in FROM (made in the console or the API) to TO would\n" +
			"change: each document added, changed or removed with its diff, TO's recent decisions replayed against\n" +
			"the promoted set, the users it would strand, and TO's scenario tests. Then, once confirmed, replace TO's\n" +
			"stored documents with FROM's in one compare-and-swap, recorded in the audit trail with --reason; it is\n" +
			"refused if either environment changed after the review. Policy files are not touched: promote them\n" +
			"through git (stepgate policy export --env FROM). Undo with stepgate policy rollback.",
		Args: exactArgs(2, "the two environments, like: staging production"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(c.reason) == "" {
				return usageError{errors.New("give --reason: why this promotion, for the audit trail")}
			}
			return c.withPolicies(cmd, func(_ config.Config, svc *admin.Service) error {
				rev, err := svc.ReviewPromotion(cmd.Context(), args[0], args[1], o.days)
				if err != nil {
					return c.adminErr(err)
				}
				if !c.confirm(rev, o, "Promote "+args[0]+" to "+args[1]) {
					return nil
				}
				rel, err := svc.Promote(cmd.Context(), c.operator(), admin.Promotion{From: args[0], To: args[1],
					FromVersion: rev.FromVersion, ToVersion: rev.Version, Reason: c.reason, OverrideTests: o.overrideTests})
				if err != nil {
					return c.adminErr(err)
				}
				fmt.Fprintf(c.stdout, "promoted %s version %d to %s: now version %d; the servers reload within seconds\n", args[0], rev.FromVersion, args[1], rel.Version)
				return nil
			})
		},
	}
	o.flags(cmd, "promote")
	return cmd
}

func (c *cli) policyRollbackCmd() *cobra.Command {
	var o changeOptions
	var env string
	var to int64
	cmd := &cobra.Command{
		Use:   "rollback --to VERSION --reason R [--env E] [--yes] [--days N] [--override-tests R]",
		Short: "Restore an earlier version of an environment's stored policy documents",
		Long: "Show what restoring version VERSION of the environment's stored policy documents would change (the\n" +
			"diff, the replayed decisions, the scenario tests), then, once confirmed, make them the documents again\n" +
			"as a new version, in one compare-and-swap recorded in the audit trail. stepgate policy history lists\n" +
			"the versions.",
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to < 1 {
				return usageError{errors.New("give --to VERSION, the version to restore (stepgate policy history lists them)")}
			}
			if strings.TrimSpace(c.reason) == "" {
				return usageError{errors.New("give --reason: why this rollback, for the audit trail")}
			}
			return c.withPolicies(cmd, func(_ config.Config, svc *admin.Service) error {
				rev, err := svc.ReviewRollback(cmd.Context(), env, to, o.days)
				if err != nil {
					return c.adminErr(err)
				}
				if !c.confirm(rev, o, fmt.Sprintf("Restore version %d of %s", to, env)) {
					return nil
				}
				rel, err := svc.RollBack(cmd.Context(), c.operator(), admin.Rollback{Env: env, Version: to, HeadVersion: rev.Version,
					Reason: c.reason, OverrideTests: o.overrideTests})
				if err != nil {
					return c.adminErr(err)
				}
				fmt.Fprintf(c.stdout, "restored version %d of %s as version %d; the servers reload within seconds\n", to, env, rel.Version)
				return nil
			})
		},
	}
	cmd.Flags().Int64Var(&to, "to", 0, "the version to restore")
	envFlag(cmd, &env)
	o.flags(cmd, "roll back")
	return cmd
}

func (c *cli) policyHistoryCmd() *cobra.Command {
	var env string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history [--env E] [--json]",
		Short: "List the versions of an environment's stored policy documents: who changed what, when and why",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withPolicies(cmd, func(_ config.Config, svc *admin.Service) error {
				rels, err := svc.History(cmd.Context(), env)
				if err != nil {
					return c.adminErr(err)
				}
				if asJSON {
					return c.printJSON(map[string]any{"environment": env, "releases": nonNilReleases(rels)})
				}
				return printHistory(c.stdout, env, rels)
			})
		},
	}
	envFlag(cmd, &env)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the versions as JSON, each document by name and version")
	return cmd
}

func nonNilReleases(rels []admin.Release) []admin.Release {
	if rels == nil {
		return []admin.Release{}
	}
	return rels
}

// printHistory writes one line per release, newest first.
func printHistory(w io.Writer, env string, rels []admin.Release) error {
	if len(rels) == 0 {
		_, err := fmt.Fprintf(w, "%s has no stored policy documents yet: nothing was saved in the console or the API\n", env)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tWHEN\tWHO\tCHANGE\tDOCUMENTS\tREASON")
	for _, r := range rels {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", r.Version, r.At.Format("2006-01-02 15:04:05Z"), oneLine(r.Actor), oneLine(describeChange(r.Change)), len(r.Documents), oneLine(r.Reason))
	}
	return tw.Flush()
}

// oneLine is text for one line of the history: with a line break, a tab,
// a terminal escape, a bidirectional override or another character that
// is not shown as itself in it (a reason stored before such reasons were
// refused), it is quoted, so it cannot forge lines or rewrite the
// terminal.
func oneLine(text string) string {
	if strings.ContainsFunc(text, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return strconv.Quote(text)
	}
	return text
}

// describeChange says in a few words what made a release.
func describeChange(ch admin.Change) string {
	switch ch.Action {
	case "policy.promote":
		return fmt.Sprintf("promoted from %s v%d", ch.FromEnv, ch.FromVersion)
	case "policy.rollback":
		return "rolled back to v" + strconv.FormatInt(ch.FromVersion, 10)
	}
	what := strings.TrimPrefix(ch.Action, "policy.")
	if ch.Target != "" {
		what += " " + ch.Target
	}
	return what
}

// confirm prints the review and asks whether to go ahead, unless --yes
// says so already. Nothing to change ends it.
func (c *cli) confirm(rev admin.Review, o changeOptions, question string) bool {
	printReview(c.stdout, rev)
	if len(rev.Changes) == 0 {
		fmt.Fprintln(c.stdout, "nothing to do: the documents are already the same")
		return false
	}
	if len(rev.Failed) > 0 && o.overrideTests == "" {
		fmt.Fprintf(c.stdout, "%d scenario tests fail with this change; fix them, or give --override-tests REASON to go ahead anyway\n", len(rev.Failed))
		return false
	}
	if o.yes {
		return true
	}
	fmt.Fprintf(c.stdout, "%s? Type yes to go ahead: ", question)
	line, _ := bufio.NewReader(io.LimitReader(c.stdin, 1024)).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		fmt.Fprintln(c.stdout, "\nnothing changed")
		return false
	}
	return true
}

// printReview writes the diff, the replayed decisions and the failed
// scenario tests of a review.
func printReview(w io.Writer, rev admin.Review) {
	fmt.Fprintf(w, "%s version %d, with the documents of %s version %d:\n", rev.Env, rev.Version, rev.FromEnv, rev.FromVersion)
	for _, ch := range rev.Changes {
		fmt.Fprintf(w, "\n%s document %s\n%s\n", ch.Kind, ch.Name, ch.Diff)
	}
	imp := rev.Impact
	fmt.Fprintf(w, "\nreplayed %d decisions of %s since %s: %d would change", imp.Replayed, rev.Env, imp.Since.Format("2006-01-02"), imp.Changed)
	for _, t := range imp.Transitions {
		fmt.Fprintf(w, "; %s → %s: %d", t.From, t.To, t.Count)
	}
	fmt.Fprintln(w)
	if len(imp.Stranded) > 0 {
		fmt.Fprintf(w, "would strand %d users who could never meet a policy: %s\n", len(imp.Stranded), strings.Join(imp.Stranded, ", "))
	}
	for _, f := range rev.Failed {
		fmt.Fprintf(w, "scenario test fails: %s\n", f)
	}
}

// adminErr prints a refusal of the administrators' service with its
// problems or failed scenarios; invalid input is a usage error.
func (c *cli) adminErr(err error) error {
	var ae *admin.Error
	if !errors.As(err, &ae) {
		return err
	}
	for _, p := range ae.Problems {
		fmt.Fprintln(c.stdout, p.String())
	}
	for _, f := range ae.Scenarios {
		fmt.Fprintln(c.stdout, f)
	}
	if ae.Kind == admin.Invalid || ae.Kind == admin.NotFound {
		return usageError{errors.New(ae.Message)}
	}
	return errors.New(ae.Message)
}
