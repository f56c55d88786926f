package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/stepgate/stepgate/internal/riskservice"
	"github.com/stepgate/stepgate/internal/store"
)

// showRisk prints a user's risk level and the detections behind it:
// built-in ones, then those other systems reported, with their source
// and when they stop counting.
func (c *cli) showRisk(ctx context.Context, k *riskservice.Service, u store.User, asJSON bool) error {
	d, err := k.Detail(ctx, u.ID)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			User string `json:"user"`
			riskservice.RiskDetail
		}{u.Username, d})
	}
	fmt.Fprintf(c.stdout, "%s: user risk %s", u.Username, d.Level)
	if d.Resolution != "" {
		fmt.Fprintf(c.stdout, " (last %s)", d.Resolution)
	}
	fmt.Fprintln(c.stdout)
	if len(d.Detections)+len(d.Reported) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LEVEL\tTYPE\tREASON\tAPPLIES TO\tSOURCE\tUNTIL")
	for _, r := range d.Detections {
		fmt.Fprintf(tw, "%s\t%s\t%s\tuser\tstepgate\tdismissed\n", r.Level, r.Type, r.Reason)
	}
	for _, r := range d.Reported {
		target := r.AppliesTo
		if r.SessionID != "" {
			target += " session " + r.SessionID
		}
		if r.TokenID != "" {
			target += " token " + r.TokenID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Level, r.Type, r.Reason, target, r.Source, r.ExpiresAt.Format(time.RFC3339))
	}
	return tw.Flush()
}
