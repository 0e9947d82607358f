package sync

import (
	"context"

	"github.com/go-logr/logr"
)

// quiet returns ctx with a logger that drops everything. client-go logs request and
// response bodies through the context's logger at high verbosity (-v=8 and up); a Secret
// or TokenRequest body holds values, so those calls must never reach a real logger,
// whatever the verbosity.
func quiet(ctx context.Context) context.Context {
	return logr.NewContext(ctx, logr.Discard())
}
