package main

import (
	"errors"
	"log/slog"

	"github.com/cosmic-horizons/horizons/backends"
)

// newSimBackend builds the simulated GPU cluster from cfg.
//
// TODO(wiring): backends/simgpu has not landed yet; this is replaced by
// simgpu.New as soon as it does.
func newSimBackend(cfg config, log *slog.Logger) (*backends.Backend, error) {
	return nil, errors.New("backends/simgpu is not available in this build yet")
}
