package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
)

func (c *cli) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Stepgate server",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Server.Listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w; choose another address with --listen or server.listen", cfg.Server.Listen, err)
			}
			defer ln.Close()
			// With --listen HOST:0 the kernel picks the port; a derived
			// issuer must name the port actually bound.
			if strings.HasSuffix(cfg.Server.Issuer, "://localhost:0") {
				cfg.Server.Issuer = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			}
			a, err := app.New(cmd.Context(), cfg, c.logger(cfg))
			if err != nil {
				return err
			}
			defer a.Close()
			return a.Serve(cmd.Context(), ln)
		},
	}
	cmd.Flags().StringVar(&c.flags.Listen, "listen", "", "address to listen on (default 127.0.0.1:8080)")
	cmd.Flags().StringVar(&c.flags.Issuer, "issuer", "", "public base URL (default http://localhost:<listen port>)")
	return cmd
}
