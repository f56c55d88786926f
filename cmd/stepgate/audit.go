package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

func (c *cli) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The audit trail of administrative changes"}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check that no entry of the audit trail was changed, removed or reordered",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd.Context(), func(_ config.Config, st store.Store) error {
				n, err := audit.New(st, nil).Verify(cmd.Context())
				if errors.Is(err, audit.ErrBroken) {
					return fmt.Errorf("%w (the %d entries before it are intact)", err, n)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "ok: %d entries, chain intact\n", n)
				return nil
			})
		},
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the audit trail, oldest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd.Context(), func(_ config.Config, st store.Store) error {
				entries, err := audit.New(st, nil).List(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(c.stdout)
					for _, e := range entries {
						if err := enc.Encode(e); err != nil {
							return err
						}
					}
					return nil
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tREASON")
				for _, e := range entries {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format(time.RFC3339), e.Actor, e.Action, e.Target, dash(e.Reason))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON Lines")
	cmd.AddCommand(verify, list)
	return cmd
}
