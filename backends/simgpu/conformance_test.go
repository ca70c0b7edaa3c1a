package simgpu_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/backendtest"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// sizes is a dataset size table for tests: "small" runs in seconds of
// modelled time, "huge" for months.
func sizes(id string) float64 {
	switch id {
	case "small":
		return 1
	case "huge":
		return 1e6
	}
	return simgpu.DatasetSize(id)
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backendtest.Instance {
			clk := simgpu.NewManualClock(epoch)
			b, err := simgpu.Open(&simgpu.Config{Clock: clk, SpeedUp: 60, DatasetGB: sizes}, &backends.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			return backendtest.Instance{Backend: b, Step: func() { clk.Advance(time.Second) }}
		},
		Complete: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: agents.NameAlphaCal, DatasetID: "small", GPUs: 1}
		},
		Fail: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: agents.NameAlphaCal, DatasetID: "small", GPUs: 1,
				Labels: map[string]string{simgpu.LabelFail: simgpu.FailOOM}}
		},
		Long: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: agents.NameImageReconstruction, DatasetID: "huge", GPUs: 2}
		},
	})
}
