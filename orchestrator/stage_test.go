package orchestrator_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/local"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
)

// A multi-stage agent run under the orchestrator on the local backend:
// its stage changes arrive as job.progress events whose data carries the
// stage and whose reason is the note, in pipeline order, with progress
// never falling.
func TestStageProgressEvents(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := agents.NewRegistry()
	if err := reg.Register(pipeline.NewAgent()); err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(&local.Config{Agents: reg, Logger: log}, &backends.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	bus := membus.NewBus(nil)
	defer bus.Close()
	o, err := orchestrator.New(memstore.New(nil), bus, &orchestrator.Config{
		Backends: []*backends.Backend{be}, Agents: reg, Logger: log, PollInterval: 2 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer o.Stop(ctx)
	job, _, err := o.Submit(ctx, "alice", orchestrator.Spec{Agent: "pipeline", DatasetID: "VLASS2.1.T10t01",
		Params: json.RawMessage(`{"image_size": 128}`)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j, err := o.Get(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State.Terminal() {
			if j.State != orchestrator.StateCompleted {
				t.Fatalf("job ended %s: %s", j.State, j.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job did not finish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	evs, err := o.Events(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	order := map[string]int{}
	for i, s := range pipeline.Stages {
		order[s.Name] = i
	}
	var stages []string
	last, lastOrder := -1.0, -1
	for _, ev := range evs {
		if ev.Type != events.JobProgress {
			continue
		}
		var d events.JobData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Progress < last {
			t.Errorf("job.progress fell from %v to %v", last, d.Progress)
		}
		last = d.Progress
		if d.Stage == "" {
			continue
		}
		name, _, ok := agents.ParseStage(d.Reason)
		if !ok || name != d.Stage {
			t.Errorf("stage event: stage %q, reason %q", d.Stage, d.Reason)
		}
		if order[d.Stage] < lastOrder {
			t.Errorf("stage %s announced after a later stage", d.Stage)
		}
		lastOrder = order[d.Stage]
		stages = append(stages, d.Reason)
	}
	t.Logf("stage events: %q", stages)
	// The monitor polls, so a very short stage may be skipped; the long
	// imaging stage is always seen, and at least three stages in all.
	seen := map[string]bool{}
	for _, s := range stages {
		n, _, _ := agents.ParseStage(s)
		seen[n] = true
	}
	if !seen[pipeline.StageImaging] || len(seen) < 3 {
		t.Errorf("stage events %q: want imaging and at least 3 stages", stages)
	}
}
