package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// userJSON is the public shape of a user: never the password hash.
type userJSON struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	Groups      []string  `json:"groups"`
	Roles       []string  `json:"roles"`
	Disabled    bool      `json:"disabled"`
	HasPassword bool      `json:"has_password"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toJSON(u store.User) userJSON {
	return userJSON{
		ID: u.ID, Username: u.Username, Email: u.Email, DisplayName: u.DisplayName,
		Groups: nonNil(u.Groups), Roles: nonNil(u.Roles), Disabled: u.Disabled,
		HasPassword: u.PasswordHash != "", CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// withUsers runs fn with the user service over the configured store.
func (c *cli) withUsers(cmd *cobra.Command, fn func(svc *users.Service) error) error {
	return c.withStore(cmd.Context(), func(cfg config.Config, s store.Store) error {
		svc, err := app.NewUsers(cfg, s)
		if err != nil {
			return err
		}
		return fn(svc)
	})
}

func (c *cli) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users"}
	cmd.AddCommand(c.userAddCmd(), c.userListCmd(), c.userShowCmd(), c.userPasswdCmd(),
		c.userDisableCmd(true), c.userDisableCmd(false), c.userSetCmd(), c.userRevokeCmd())
	cmd.AddCommand(c.mfaCmds()...)
	return cmd
}

func (c *cli) userAddCmd() *cobra.Command {
	var nu users.NewUser
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "add NAME --email E --password-stdin [--group G]... [--role R]...",
		Short: "Create a user",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !fromStdin {
				return usageError{fmt.Errorf("--password-stdin is required: passwords are never taken as arguments, which other users can read in the process list")}
			}
			pw, err := c.readSecret()
			if err != nil {
				return err
			}
			nu.Username, nu.Password = args[0], pw
			return c.withUsers(cmd, func(svc *users.Service) error {
				u, err := svc.Add(cmd.Context(), nu)
				if err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "user.add", "user:"+u.Username, map[string]any{"email": u.Email, "groups": u.Groups, "roles": u.Roles}); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "created user %s (%s)\n", u.Username, u.ID)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&nu.Email, "email", "", "email address")
	f.StringVar(&nu.DisplayName, "display-name", "", "name shown to people")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	f.StringArrayVar(&nu.Groups, "group", nil, "group membership (repeatable)")
	f.StringArrayVar(&nu.Roles, "role", nil, "role (repeatable)")
	return cmd
}

func (c *cli) userListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List users",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withUsers(cmd, func(svc *users.Service) error {
				list, err := svc.List(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]userJSON, 0, len(list))
					for _, u := range list {
						out = append(out, toJSON(u))
					}
					return c.printJSON(out)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USERNAME\tEMAIL\tGROUPS\tROLES\tSTATUS")
				for _, u := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username, dash(u.Email), dash(strings.Join(u.Groups, ",")),
						dash(strings.Join(u.Roles, ",")), status(u))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (c *cli) userShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME [--json]",
		Short: "Show one user",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUsers(cmd, func(svc *users.Service) error {
				u, err := svc.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return c.printJSON(toJSON(u))
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				for _, row := range [][2]string{
					{"username", u.Username}, {"id", u.ID}, {"email", dash(u.Email)}, {"display name", dash(u.DisplayName)},
					{"groups", dash(strings.Join(u.Groups, ", "))}, {"roles", dash(strings.Join(u.Roles, ", "))},
					{"status", status(u)}, {"created", u.CreatedAt.Format(time.RFC3339)}, {"updated", u.UpdatedAt.Format(time.RFC3339)},
				} {
					fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (c *cli) userPasswdCmd() *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME --password-stdin",
		Short: "Set a user's password (ends their sessions)",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !fromStdin {
				return usageError{fmt.Errorf("--password-stdin is required")}
			}
			pw, err := c.readSecret()
			if err != nil {
				return err
			}
			return c.withUsers(cmd, func(svc *users.Service) error {
				if err := svc.SetPassword(cmd.Context(), args[0], pw); err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "user.password-set", "user:"+args[0], nil); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "password of %s changed; their sessions were ended\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func (c *cli) userDisableCmd(disable bool) *cobra.Command {
	verb, done := "enable", "enabled"
	if disable {
		verb, done = "disable", "disabled; their sessions were ended"
	}
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a user",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUsers(cmd, func(svc *users.Service) error {
				if err := svc.SetDisabled(cmd.Context(), args[0], disable); err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "user."+verb, "user:"+args[0], nil); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "user %s %s\n", args[0], done)
				return nil
			})
		},
	}
}

func (c *cli) userRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "End every session of a user and invalidate the tokens they hold, at once",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUsers(cmd, func(svc *users.Service) error {
				if err := svc.Revoke(cmd.Context(), args[0]); err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "user.revoke", "user:"+args[0], nil); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "revoked %s: sessions ended, tokens issued until now refused\n", args[0])
				return nil
			})
		},
	}
}

func (c *cli) userSetCmd() *cobra.Command {
	var groups, roles []string
	cmd := &cobra.Command{
		Use:   "set NAME [--group G]... [--role R]...",
		Short: "Replace a user's groups and/or roles",
		Args:  exactArgs(1, "a username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("group") && !cmd.Flags().Changed("role") {
				return usageError{fmt.Errorf("give --group and/or --role (use --group '' to clear)")}
			}
			g, r := flagList(cmd, "group", groups), flagList(cmd, "role", roles)
			return c.withUsers(cmd, func(svc *users.Service) error {
				u, err := svc.SetMemberships(cmd.Context(), args[0], g, r)
				if err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "user.set", "user:"+u.Username, map[string]any{"groups": u.Groups, "roles": u.Roles}); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "user %s: groups %s, roles %s\n", u.Username, dash(strings.Join(u.Groups, ",")), dash(strings.Join(u.Roles, ",")))
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&groups, "group", nil, "group (repeatable; '' clears)")
	cmd.Flags().StringArrayVar(&roles, "role", nil, "role (repeatable; '' clears)")
	return cmd
}

// flagList returns nil when the flag was not given (leave unchanged), and
// the non-empty values otherwise (possibly none: clear).
func flagList(cmd *cobra.Command, name string, vals []string) []string {
	if !cmd.Flags().Changed(name) {
		return nil
	}
	out := []string{}
	for _, v := range vals {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func status(u store.User) string {
	if u.Disabled {
		return "disabled"
	}
	return "active"
}
