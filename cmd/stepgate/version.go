package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and build information",
		Args:  exactArgs(0, "no arguments"),
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(c.stdout, "stepgate %s\n", version)
			fmt.Fprintf(c.stdout, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if bi, ok := debug.ReadBuildInfo(); ok {
				fmt.Fprintf(c.stdout, "module: %s %s\n", bi.Main.Path, bi.Main.Version)
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision", "vcs.time", "vcs.modified", "CGO_ENABLED":
						fmt.Fprintf(c.stdout, "%s: %s\n", s.Key, s.Value)
					}
				}
			}
		},
	}
}
