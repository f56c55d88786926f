package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/store"
)

// withAdmin runs fn with the administrators' service over the configured
// store: the same operations the console and the admin API run, recorded
// in the audit trail in the operator's name with --reason.
func (c *cli) withAdmin(cmd *cobra.Command, fn func(cfg config.Config, svc *admin.Service) error) error {
	return c.withStore(cmd.Context(), func(cfg config.Config, s store.Store) error {
		observers, closeWatch, err := app.CommandLineWatch(cmd.Context(), cfg, s, c.logger(cfg))
		if err != nil {
			return err
		}
		// Sends what the command queued (mail, the webhook) and writes its
		// sign-in log entries before the process exits, within a bound.
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 10*time.Second)
			defer cancel()
			closeWatch(ctx)
		}()
		return fn(cfg, admin.New(admin.Deps{Store: s, Audit: audit.New(s, nil), Elevation: app.CommandLineElevation(cfg, s, observers...)}))
	})
}

func (c *cli) operator() admin.Actor { return admin.Actor(c.actor()) }

// elevationCmds are the just-in-time elevation commands under role.
func (c *cli) elevationCmds() []*cobra.Command {
	return []*cobra.Command{c.roleEligibleCmd(), c.roleActivateCmd(), c.roleRequestsCmd(),
		c.roleDecideCmd(true), c.roleDecideCmd(false), c.roleDeactivateCmd()}
}

// holderOf reads --user and --group: exactly one names who an
// assignment is for.
func holderOf(user, group string) (admin.Assignment, error) {
	if (user == "") == (group == "") {
		return admin.Assignment{}, usageError{errors.New("name exactly one holder: --user NAME or --group NAME")}
	}
	return admin.Assignment{User: user, Group: group}, nil
}

func (c *cli) roleEligibleCmd() *cobra.Command {
	var user, group string
	var scope []string
	var remove bool
	cmd := &cobra.Command{
		Use:   "eligible ROLE --user NAME|--group NAME [--scope APP,...] [--remove]",
		Short: "Make a user or a group eligible to activate a role for a while (or, with --remove, no longer)",
		Args:  exactArgs(1, "a role name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := holderOf(user, group)
			if err != nil {
				return err
			}
			a.Role, a.Kind, a.Scope = args[0], store.AssignEligible, scope
			if remove && len(scope) > 0 {
				return usageError{errors.New("--scope and --remove do not go together: --remove takes away the whole assignment")}
			}
			return c.withAdmin(cmd, func(_ config.Config, svc *admin.Service) error {
				if remove {
					if err := svc.Unassign(cmd.Context(), c.operator(), c.reason, a); err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "%s is no longer eligible for %s; a running server ends their pending requests and active elevations of it within a second\n", holderName(a), a.Role)
					return nil
				}
				made, err := svc.Assign(cmd.Context(), c.operator(), c.reason, a)
				if err != nil {
					return err
				}
				where := "everywhere"
				if len(made.Scope) > 0 {
					where = "for " + strings.Join(made.Scope, ", ")
				}
				fmt.Fprintf(c.stdout, "%s is now eligible for %s (%s); they activate it on /account/roles\n", made.Holder(), made.Role, where)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user (username or id)")
	cmd.Flags().StringVar(&group, "group", "", "the group: its direct members are eligible")
	cmd.Flags().StringSliceVar(&scope, "scope", nil, "apps (OIDC client ids, gateway route apps) where the activated role counts; default everywhere")
	cmd.Flags().BoolVar(&remove, "remove", false, "take the eligibility away instead")
	return cmd
}

func holderName(a admin.Assignment) string {
	if a.User != "" {
		return "user " + a.User
	}
	return "group " + a.Group
}

func (c *cli) roleActivateCmd() *cobra.Command {
	var user, duration string
	var ask elevate.Ask
	cmd := &cobra.Command{
		Use:   "activate ROLE --user NAME [--duration 1h] [--justification TEXT] [--ticket REF]",
		Short: "Ask for a user's activation of a role they are eligible for; the user still proves it on /account/roles",
		Args:  exactArgs(1, "a role name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return usageError{errors.New("--user is required: the user who will hold the role")}
			}
			ask.Role = args[0]
			if duration != "" {
				d, err := time.ParseDuration(duration)
				if err != nil || d <= 0 {
					return usageError{fmt.Errorf("--duration %q is not a duration; give one like 30m or 1h", duration)}
				}
				ask.Duration = d
			}
			return c.withAdmin(cmd, func(cfg config.Config, svc *admin.Service) error {
				e, err := svc.RequestFor(cmd.Context(), c.operator(), c.reason, user, ask)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "request %s: %s for %s, %s; pending\n", e.ID, e.Role, e.User, e.Duration)
				fmt.Fprint(c.stdout, nextSteps(cfg, e))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user who will hold the role (username or id)")
	cmd.Flags().StringVar(&duration, "duration", "", "how long, like 1h (default: the role's maximum)")
	cmd.Flags().StringVar(&ask.Justification, "justification", "", "why the user needs it")
	cmd.Flags().StringVar(&ask.Ticket, "ticket", "", "the change or incident reference")
	return cmd
}

// nextSteps tells the operator what must still happen before a request
// made on a user's behalf turns active: the user's own step-up, then
// approvals. The command line never gives the step-up for them.
func nextSteps(cfg config.Config, e admin.ElevationInfo) string {
	var b strings.Builder
	page := strings.TrimSuffix(cfg.Server.Issuer, "/") + "/account/roles"
	fmt.Fprintf(&b, "next: %s signs in at %s and confirms the request there with the step-up the role asks for;\n", e.User, page)
	fmt.Fprintf(&b, "      it lapses at %s if not done\n", e.Deadline.UTC().Format(time.RFC3339))
	if e.Needed > 0 {
		fmt.Fprintf(&b, "then: %d approver(s) from the group %s approve it: stepgate role approve %s --as APPROVER\n", e.Needed, e.ApproverGroup, e.ID)
	} else {
		fmt.Fprintf(&b, "then: it turns active at once, for %s\n", e.Duration)
	}
	return b.String()
}

func (c *cli) roleRequestsCmd() *cobra.Command {
	var f admin.ElevationFilter
	var states []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "requests [--user NAME] [--role ROLE] [--state pending,active,...] [--json]",
		Short: "List elevation requests, newest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.States = states
			if f.Limit < 1 || f.Limit > admin.MaxElevationPage {
				return usageError{fmt.Errorf("--limit must be from 1 to %d", admin.MaxElevationPage)}
			}
			return c.withAdmin(cmd, func(_ config.Config, svc *admin.Service) error {
				page, err := svc.Elevations(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(c.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(page)
				}
				return c.printRequests(page)
			})
		},
	}
	cmd.Flags().StringVar(&f.User, "user", "", "only this requester's")
	cmd.Flags().StringVar(&f.Role, "role", "", "only this role's")
	cmd.Flags().StringSliceVar(&states, "state", nil, "only these states: pending, active, denied, expired, deactivated")
	cmd.Flags().StringVar(&f.Cursor, "cursor", "", "the next cursor the page before printed")
	cmd.Flags().IntVar(&f.Limit, "limit", admin.DefaultElevationPage, "requests per page")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (c *cli) printRequests(page admin.ElevationPage) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tROLE\tSTATE\tDURATION\tPROVEN\tAPPROVALS\tUNTIL")
	for _, e := range page.Elevations {
		approvals := "-"
		if e.Needed > 0 {
			approvals = fmt.Sprintf("%d/%d", e.Approvals, e.Needed)
		}
		until := e.Until
		if e.State == store.ElevationPending {
			until = e.Deadline
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%t\t%s\t%s\n", e.ID, e.User, e.Role, e.State, e.Duration, e.Proven, approvals, timeOrDash(until))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(c.stdout, "more: --cursor %s\n", page.Next)
	}
	return nil
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *cli) roleDecideCmd(approve bool) *cobra.Command {
	var as, comment string
	verb := "deny"
	if approve {
		verb = "approve"
	}
	cmd := &cobra.Command{
		Use:   verb + " ID --as APPROVER [--comment TEXT]",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " an elevation request as a member of the role's approver group (never the requester)",
		Args:  exactArgs(1, "a request id (stepgate role requests lists them)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(as) == "" {
				return usageError{fmt.Errorf("--as is required: the approver's username, a member of the role's approver group")}
			}
			return c.withAdmin(cmd, func(_ config.Config, svc *admin.Service) error {
				e, err := svc.Decide(cmd.Context(), c.operator(), as, args[0], approve, comment)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "%s: %s %sd by %s; the request is %s", e.ID, e.Role, verb, as, e.State)
				switch e.State {
				case store.ElevationActive:
					fmt.Fprintf(c.stdout, " until %s", e.Until.UTC().Format(time.RFC3339))
				case store.ElevationPending:
					fmt.Fprintf(c.stdout, " (%d of %d approvals)", e.Approvals, e.Needed)
				}
				fmt.Fprintln(c.stdout)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "the approver's username")
	cmd.Flags().StringVar(&comment, "comment", "", "shown to the requester and kept in the audit trail")
	return cmd
}

func (c *cli) roleDeactivateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "deactivate ID [--reason TEXT]",
		Short: "End a pending request or an active elevation now, as an administrator",
		Args:  exactArgs(1, "a request id (stepgate role requests lists them)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withAdmin(cmd, func(_ config.Config, svc *admin.Service) error {
				e, err := svc.RevokeElevation(cmd.Context(), c.operator(), c.reason, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "%s: %s of %s is %s; a running server stops honouring it at once\n", e.ID, e.Role, e.User, e.State)
				return nil
			})
		},
	}
}
