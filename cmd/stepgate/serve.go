package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

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
			stop := reloadOnHangup(cmd.Context(), a)
			defer stop()
			return a.Serve(cmd.Context(), ln)
		},
	}
	cmd.Flags().StringVar(&c.flags.Listen, "listen", "", "address to listen on (default 127.0.0.1:8080)")
	cmd.Flags().StringVar(&c.flags.Issuer, "issuer", "", "public base URL (default http://localhost:<listen port>)")
	return cmd
}

// reloadOnHangup reloads the policies on every SIGHUP until ctx ends or
// stop is called. ReloadPolicies logs the outcome itself; a failed reload
// keeps the previous policies, so the error needs no further handling.
func reloadOnHangup(ctx context.Context, a *app.App) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				a.Log.InfoContext(ctx, "SIGHUP received; reloading policies")
				_ = a.ReloadPolicies(ctx)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
