package workflow_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/internal/pgtest"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
	"github.com/cosmic-horizons/horizons/orchestrator/workflow"
)

// TestTwoReplicasOnPostgres runs two orchestrators, each with its workflow
// engine, on one PostgreSQL schema and one simulated cluster. Runs are
// submitted through both; both engines advance every run. Every run must
// complete with exactly one job per step and one step_started event per
// step, and its events must have the sequence numbers 1..n once each.
func TestTwoReplicasOnPostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t, "wf_replicas")
	ctx := context.Background()
	gpu, err := simgpu.Open(&simgpu.Config{Nodes: 8, GPUsPerNode: 8, SpeedUp: 1e6, DatasetGB: func(string) float64 { return 1 }, Logger: quiet()}, &backends.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gpu.Close() })
	bus := membus.NewBus(nil)
	t.Cleanup(func() { bus.Close() })
	var engines []*workflow.Engine
	var orchs []*orchestrator.Orchestrator
	for _, id := range []string{"wf-a", "wf-b"} {
		js, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "pgx", DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		js.DB().SetMaxOpenConns(4)
		ws, err := workflow.OpenSQL(ctx, js.DB(), &workflow.SQLConfig{Dialect: "postgres"})
		if err != nil {
			t.Fatal(err)
		}
		o, err := orchestrator.New(js, bus, &orchestrator.Config{
			Backends: []*backends.Backend{gpu}, Logger: quiet(), ReplicaID: id,
			PollInterval: 10 * time.Millisecond, ScheduleInterval: 10 * time.Millisecond, OutboxInterval: 20 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e, err := workflow.New(o, ws, bus, &workflow.Config{Logger: quiet(), PollInterval: 20 * time.Millisecond, OutboxInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// Both start at once: the built-in is published by one of them.
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		engines, orchs = append(engines, e), append(orchs, o)
		t.Cleanup(func() {
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			e.Stop(sctx)
			o.Stop(sctx)
			js.Close()
		})
	}
	const n = 20
	var ids []string
	for i := range n {
		r, err := engines[i%2].Submit(ctx, fmt.Sprintf("user-%d", i%3), workflow.RunRequest{Workflow: workflow.VLASSPipeline, Inputs: map[string]string{"dataset_id": fmt.Sprintf("vlass-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for i, id := range ids {
		r := waitRun(t, engines[(i+1)%2], id) // read through the other replica
		if r.State != workflow.RunCompleted {
			t.Errorf("run %s: %s %s", id, r.State, r.Error)
			continue
		}
		page, err := orchs[0].List(ctx, orchestrator.ListQuery{WorkflowID: id})
		if err != nil || len(page.Jobs) != 3 {
			t.Errorf("run %s has %d jobs (%v), want 3", id, len(page.Jobs), err)
		}
		evs, err := engines[0].RunEvents(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		starts := 0
		for k, ev := range evs {
			if ev.Sequence != int64(k+1) {
				t.Errorf("run %s event %d has sequence %d", id, k, ev.Sequence)
			}
			if ev.Type == events.WorkflowStepStarted {
				starts++
			}
		}
		if starts != 3 || evs[len(evs)-1].Type != events.WorkflowCompleted {
			t.Errorf("run %s: %d step_started, last %s", id, starts, evs[len(evs)-1].Type)
		}
	}
	if ws, _ := engines[1].List(ctx); len(ws) != 1 {
		t.Errorf("%d workflows after two start-ups, want the one built-in", len(ws))
	}
}
