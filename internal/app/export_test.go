package app

import (
	"context"
	"log/slog"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// Build builds a Stepgate over a store the caller opened, for the
// end-to-end tests: they wrap the store to cause failures the real
// backends do not produce on demand, such as a sign-in log that stops
// draining.
func Build(ctx context.Context, cfg config.Config, log *slog.Logger, st store.Store) (*App, error) {
	return build(ctx, cfg, log, st)
}
