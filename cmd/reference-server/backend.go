package main

import (
	"fmt"
	"log/slog"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

// newSimBackend builds the simulated GPU cluster from cfg, with the agents'
// run-time models from reg.
func newSimBackend(cfg config, reg *agents.Registry, log *slog.Logger) (*backends.Backend, error) {
	b, err := simgpu.Open(&simgpu.Config{
		Nodes:       cfg.SimNodes,
		GPUsPerNode: cfg.SimGPUs,
		SpeedUp:     cfg.SimSpeedUp,
		FailureRate: cfg.SimFailureRate,
		Seed:        cfg.SimSeed,
		// Topology and failure options (simpools.go).
		Pools:          cfg.Sim.Pools,
		NodeDowntime:   cfg.Sim.NodeDowntime,
		MixedPrecision: cfg.Sim.MixedPrecision,
		Agents:         reg,
		Logger:         log.With("component", "simgpu"),
	}, &backends.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("simulated GPU cluster: %w", err)
	}
	return b, nil
}
