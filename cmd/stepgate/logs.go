package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// signinFilter is what "logs signins" selects, as typed.
type signinFilter struct {
	user, app, decision, policy, since, until string
	database, statementClass                  string
	limit                                     int
	asJSON                                    bool
}

func (c *cli) logsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "logs", Short: "Read the sign-in log"}
	var f signinFilter
	signins := &cobra.Command{
		Use:   "signins [--user NAME] [--app APP] [--database DB] [--statement-class C] [--decision D] [--policy P] [--since T] [--until T] [--limit N] [--json]",
		Short: "List sign-ins and access decisions, newest first",
		Long: `List sign-ins and access decisions, newest first.

--since and --until take a time (2026-11-22T10:00:00Z) or an age (24h, 7d).
--json prints every matching entry as JSON Lines, for export; --limit 0
prints all of them.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd.Context(), func(_ config.Config, st store.Store) error {
				return c.listSignIns(cmd.Context(), st, f)
			})
		},
	}
	fl := signins.Flags()
	fl.StringVar(&f.user, "user", "", "only this user (user name)")
	fl.StringVar(&f.app, "app", "", "only this app or OIDC client")
	fl.StringVar(&f.database, "database", "", "only SQL statements the database gateway decided on this database")
	fl.StringVar(&f.statementClass, "statement-class", "", "only SQL statements of this class: "+strings.Join(policy.StatementClasses(), ", "))
	fl.StringVar(&f.decision, "decision", "", "only this decision: allow, challenge, block, success, failure, throttled; or an elevation step: requested, proven, approved, denied, activated, expired, deactivated")
	fl.StringVar(&f.policy, "policy", "", "only entries this policy applied to (report-only included)")
	fl.StringVar(&f.since, "since", "", "only entries at or after this time or age")
	fl.StringVar(&f.until, "until", "", "only entries before this time or age")
	fl.IntVar(&f.limit, "limit", 100, "at most this many entries; 0 for all")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON Lines")
	cmd.AddCommand(signins)
	return cmd
}

// query turns the typed filter into a store query.
func (f signinFilter) query(ctx context.Context, st store.Store, now time.Time) (store.SignInQuery, error) {
	q := store.SignInQuery{App: f.app, Decision: f.decision, Policy: f.policy, Database: f.database, StatementClass: f.statementClass}
	if c := f.statementClass; c != "" && !slices.Contains(policy.StatementClasses(), c) {
		return q, usageError{fmt.Errorf("--statement-class %q: give one of %s", c, strings.Join(policy.StatementClasses(), ", "))}
	}
	if f.user != "" {
		u, err := st.GetUserByName(ctx, f.user)
		if errors.Is(err, store.ErrNotFound) {
			return q, usageError{fmt.Errorf("--user: no user named %q; stepgate user list shows them", f.user)}
		}
		if err != nil {
			return q, err
		}
		q.UserID = u.ID
	}
	var err error
	if q.Since, err = timeOrAge("--since", f.since, now); err != nil {
		return q, err
	}
	if q.Until, err = timeOrAge("--until", f.until, now); err != nil {
		return q, err
	}
	if f.limit < 0 {
		return q, usageError{errors.New("--limit must be 0 (all) or more")}
	}
	return q, nil
}

// timeOrAge reads an RFC 3339 time or an age before now.
func timeOrAge(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := strength.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError{fmt.Errorf("%s %q: give a time like 2026-11-22T10:00:00Z or an age like 24h or 7d", flag, v)}
}

func (c *cli) listSignIns(ctx context.Context, st store.Store, f signinFilter) error {
	q, err := f.query(ctx, st, time.Now())
	if err != nil {
		return err
	}
	var tw *tabwriter.Writer
	if !f.asJSON {
		tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tSOURCE\tUSER\tAPP\tDECISION\tREASON\tRISK\tIP\tPOLICIES\tSTATEMENT")
	}
	enc := json.NewEncoder(c.stdout)
	err = audit.WalkSignIns(ctx, st, q, f.limit, func(row store.SignIn) error {
		e, err := audit.Decode(row)
		if err != nil {
			return err
		}
		if f.asJSON {
			return enc.Encode(e)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Source,
			dash(firstOf(e.Username, e.UserID)), dash(e.App), e.Decision, dash(reasonText(e)),
			dash(riskSummary(e)), dash(e.IP), dash(strings.Join(row.Policies, ",")), dash(statementText(e)))
		return nil
	})
	if err != nil {
		return err
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// statementText is an entry's SQL statement as "class: command".
func statementText(e audit.SignIn) string {
	if e.Statement == nil {
		return ""
	}
	if e.Statement.Command == "" {
		return e.Statement.Class
	}
	return e.Statement.Class + ": " + e.Statement.Command
}

// reasonText is an entry's reason code, with the role for a step of an
// elevation.
func reasonText(e audit.SignIn) string {
	if e.Elevation != nil && e.Reason != "" {
		return string(e.Reason) + " (" + e.Elevation.Role + ")"
	}
	return string(e.Reason)
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// riskSummary writes "high: password-spray" for the table.
func riskSummary(e audit.SignIn) string {
	if len(e.Risk) == 0 {
		return e.RiskLevel
	}
	reasons := make([]string, len(e.Risk))
	for i, d := range e.Risk {
		reasons[i] = d.Reason
	}
	return e.RiskLevel + ": " + strings.Join(reasons, ",")
}
