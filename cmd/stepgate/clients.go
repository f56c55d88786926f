package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/store"
)

// withClients runs fn with the client registry of the configured store.
func (c *cli) withClients(cmd *cobra.Command, fn func(*oidc.Clients) error) error {
	return c.withStore(cmd.Context(), func(cfg config.Config, s store.Store) error {
		clients, err := oidc.NewClients(s, app.ClientsOptions(cfg.OIDC.Clients))
		if err != nil {
			return err
		}
		return fn(clients)
	})
}

// clientView is a client as the command line shows it.
type clientView struct {
	ID                     string   `json:"client_id"`
	Secret                 string   `json:"client_secret,omitempty"`
	Name                   string   `json:"name,omitempty"`
	Public                 bool     `json:"public"`
	AuthMethod             string   `json:"token_endpoint_auth_method"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             []string `json:"grant_types"`
	Capabilities           []string `json:"capabilities,omitempty"`
	Scopes                 []string `json:"scopes,omitempty"`
	Source                 string   `json:"source"`
}

func viewOf(cl *oidc.Client) clientView {
	src := "store"
	if cl.FromConfig {
		src = "config"
	}
	return clientView{ID: cl.ID, Name: cl.Name, Public: cl.Public, AuthMethod: cl.AuthMethod,
		RedirectURIs: cl.RedirectURIs, PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs,
		GrantTypes: cl.GrantTypes, Capabilities: cl.Capabilities, Scopes: cl.Scopes, Source: src}
}

func (c *cli) clientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Manage OpenID Connect clients (relying parties)"}
	var n oidc.NewClient
	var asJSON bool
	var jwksFile string
	add := &cobra.Command{
		Use:   "add NAME --redirect-uri URI... [--public] [--auth-method M] [--grant-type G]... [--json]",
		Short: "Register a client; prints its id and, for a confidential client, its secret (shown once)",
		Args:  exactArgs(1, "a client name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n.Name = args[0]
			if n.ID == "" {
				n.ID = args[0]
			}
			if jwksFile != "" {
				b, err := os.ReadFile(jwksFile) //nolint:gosec // the operator names the file
				if err != nil {
					return fmt.Errorf("read --jwks-file: %w", err)
				}
				n.JWKS = b
			}
			return c.withClients(cmd, func(cs *oidc.Clients) error {
				cl, secret, err := cs.Add(cmd.Context(), n)
				if err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "client.add", "client:"+cl.ID, viewOf(cl)); err != nil {
					return err
				}
				v := viewOf(cl)
				v.Secret = secret
				if asJSON {
					// Showing the new secret once, to the operator who created it, is the point.
					return json.NewEncoder(c.stdout).Encode(v) //nolint:gosec // G117: see above
				}
				fmt.Fprintf(c.stdout, "client_id:     %s\n", cl.ID)
				if secret != "" {
					fmt.Fprintf(c.stdout, "client_secret: %s\n", secret)
					fmt.Fprintln(c.stderr, "Store the secret now: it is not shown again.")
				}
				return nil
			})
		},
	}
	f := add.Flags()
	f.StringVar(&n.ID, "id", "", "client id (default: NAME)")
	f.StringArrayVar(&n.RedirectURIs, "redirect-uri", nil, "a redirect URI, matched exactly (repeatable)")
	f.StringArrayVar(&n.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "where RP-initiated logout may return (repeatable)")
	f.BoolVar(&n.Public, "public", false, "a public client (SPA or native app): no secret, PKCE required")
	f.StringVar(&n.AuthMethod, "auth-method", "", "client_secret_basic (default), client_secret_post, private_key_jwt or none")
	f.StringVar(&jwksFile, "jwks-file", "", "public keys (JWKS) of a private_key_jwt client")
	f.StringArrayVar(&n.GrantTypes, "grant-type", nil, "authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code (repeatable; default the first two)")
	f.StringArrayVar(&n.Capabilities, "capability", nil, "client capability for claims challenges, e.g. cp1 (repeatable)")
	f.StringArrayVar(&n.Scopes, "scope", nil, "privileged scope: stepgate:admin admits a client_credentials client to the admin API")
	f.BoolVar(&asJSON, "json", false, "print JSON")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List clients",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withClients(cmd, func(cs *oidc.Clients) error {
				all, err := cs.List(cmd.Context())
				if err != nil {
					return err
				}
				views := make([]clientView, len(all))
				for i, cl := range all {
					views[i] = viewOf(cl)
				}
				if listJSON {
					return json.NewEncoder(c.stdout).Encode(views) //nolint:gosec // G117: list views never carry a secret
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CLIENT ID\tAUTH\tGRANTS\tREDIRECT URIS\tSOURCE")
				for _, v := range views {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.ID, v.AuthMethod, strings.Join(v.GrantTypes, ","), dash(strings.Join(v.RedirectURIs, " ")), v.Source)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	remove := &cobra.Command{
		Use:   "remove CLIENT_ID",
		Short: "Remove a client added with 'client add'",
		Args:  exactArgs(1, "a client id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClients(cmd, func(cs *oidc.Clients) error {
				if err := cs.Remove(cmd.Context(), args[0]); err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "client.remove", "client:"+args[0], nil); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "removed client %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func (c *cli) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Inspect and rotate token signing keys"}
	withRing := func(cmd *cobra.Command, fn func(*oidc.KeyRing) error) error {
		return c.withStore(cmd.Context(), func(cfg config.Config, s store.Store) error {
			return fn(app.KeyRingFor(cfg, s))
		})
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Publish a new signing key; it starts signing after oidc.key_publish_ahead",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRing(cmd, func(k *oidc.KeyRing) error {
				if err := k.Maintain(cmd.Context()); err != nil {
					return err
				}
				info, err := k.Rotate(cmd.Context())
				if err != nil {
					return err
				}
				if err := c.record(cmd.Context(), "keys.rotate", "key:"+info.ID, info); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "published key %s (%s); it signs from %s\n", info.ID, info.Alg, info.SignFrom.Format(time.RFC3339))
				return nil
			})
		},
	}
	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List signing keys and their state (next, signing, retired)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRing(cmd, func(k *oidc.KeyRing) error {
				keys, err := k.List(cmd.Context())
				if err != nil {
					return err
				}
				if listJSON {
					return json.NewEncoder(c.stdout).Encode(keys)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS FROM\tPUBLISHED UNTIL")
				for _, ki := range keys {
					until := "-"
					if !ki.Until.IsZero() {
						until = ki.Until.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ki.ID, ki.Alg, ki.State, ki.SignFrom.Format(time.RFC3339), until)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	cmd.AddCommand(rotate, list)
	return cmd
}
