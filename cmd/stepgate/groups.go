package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

func (c *cli) groupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Manage groups (policies can target them)"}
	var g store.Group
	add := &cobra.Command{
		Use:   "add NAME [--parent P]... [--display-name N] [--description D]",
		Short: "Create a group",
		Args:  exactArgs(1, "a group name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.Name = args[0]
			return c.withUsers(cmd, func(svc *users.Service) error {
				out, err := svc.AddGroup(cmd.Context(), g)
				if err == nil {
					if err := c.record(cmd.Context(), "group.add", "group:"+out.Name, out.Parents); err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "created group %s\n", out.Name)
				}
				return err
			})
		},
	}
	add.Flags().StringArrayVar(&g.Parents, "parent", nil, "a group this group is nested in (repeatable)")
	add.Flags().StringVar(&g.DisplayName, "display-name", "", "name shown to people")
	add.Flags().StringVar(&g.Description, "description", "", "what the group is for")

	list := &cobra.Command{
		Use:   "list",
		Short: "List groups",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withUsers(cmd, func(svc *users.Service) error {
				groups, err := svc.ListGroups(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tPARENTS\tDESCRIPTION")
				for _, g := range groups {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Name, dash(strings.Join(g.Parents, ",")), dash(g.Description))
				}
				return tw.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a group nobody is in",
		Args:  exactArgs(1, "a group name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUsers(cmd, func(svc *users.Service) error {
				err := svc.RemoveGroup(cmd.Context(), args[0])
				if err == nil {
					if err := c.record(cmd.Context(), "group.remove", "group:"+args[0], nil); err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "removed group %s\n", args[0])
				}
				return err
			})
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func (c *cli) roleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Manage roles (policies can target them), who is eligible for them, and their activations"}
	var r store.Role
	add := &cobra.Command{
		Use:   "add NAME [--description D]",
		Short: "Create a role",
		Args:  exactArgs(1, "a role name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r.Name = args[0]
			return c.withUsers(cmd, func(svc *users.Service) error {
				out, err := svc.AddRole(cmd.Context(), r)
				if err == nil {
					if err := c.record(cmd.Context(), "role.add", "role:"+out.Name, nil); err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "created role %s\n", out.Name)
				}
				return err
			})
		},
	}
	add.Flags().StringVar(&r.Description, "description", "", "what the role allows")
	list := &cobra.Command{
		Use:   "list",
		Short: "List roles",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withUsers(cmd, func(svc *users.Service) error {
				roles, err := svc.ListRoles(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tDESCRIPTION")
				for _, r := range roles {
					fmt.Fprintf(tw, "%s\t%s\n", r.Name, dash(r.Description))
				}
				return tw.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a role nobody holds",
		Args:  exactArgs(1, "a role name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUsers(cmd, func(svc *users.Service) error {
				err := svc.RemoveRole(cmd.Context(), args[0])
				if err == nil {
					if err := c.record(cmd.Context(), "role.remove", "role:"+args[0], nil); err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "removed role %s\n", args[0])
				}
				return err
			})
		},
	}
	cmd.AddCommand(add, list, remove)
	cmd.AddCommand(c.elevationCmds()...)
	return cmd
}
