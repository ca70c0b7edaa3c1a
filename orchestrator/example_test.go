package orchestrator_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
)

// Run one AlphaCal job on the simulated GPU cluster and follow its events.
func Example() {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gpu, err := simgpu.Open(&simgpu.Config{SpeedUp: 5000, DatasetGB: func(string) float64 { return 10 }, Logger: log}, &backends.Options{Logger: log})
	if err != nil {
		fmt.Println(err)
		return
	}
	bus := membus.NewBus(nil)
	defer bus.Close()
	o, err := orchestrator.New(memstore.New(nil), bus, &orchestrator.Config{
		Backends:     []*backends.Backend{gpu},
		Logger:       log,
		PollInterval: 5 * time.Millisecond,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := o.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer o.Stop(ctx)

	watch, _ := o.Watch(ctx, "")
	job, _, err := o.Submit(ctx, "alice", orchestrator.Spec{Agent: "AlphaCal", DatasetID: "vlass/T10t01", GPUs: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("submitted", job.Agent, "state", job.State)
	for ev := range watch {
		if ev.Type == events.JobProgress {
			continue // how many depends on timing
		}
		fmt.Println(ev.Sequence > 0, ev.Type)
		if ev.Type == events.JobCompleted {
			break
		}
	}
	final, _ := o.Get(ctx, job.ID)
	fmt.Println(final.State, final.Progress, final.Attempts)
	// Output:
	// submitted alphacal state QUEUED
	// true job.submitted
	// true job.queued
	// true job.running
	// true job.completed
	// COMPLETED 100 1
}

// Read a finished job's audit record: who submitted what, which agent
// definition accepted it, and each backend attempt.
func ExampleOrchestrator_Provenance() {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gpu, err := simgpu.Open(&simgpu.Config{SpeedUp: 5000, DatasetGB: func(string) float64 { return 10 }, Logger: log}, &backends.Options{Logger: log})
	if err != nil {
		fmt.Println(err)
		return
	}
	bus := membus.NewBus(nil)
	defer bus.Close()
	o, err := orchestrator.New(memstore.New(nil), bus, &orchestrator.Config{
		Backends: []*backends.Backend{gpu}, Logger: log, PollInterval: 5 * time.Millisecond,
		ReplicaID: "replica-1",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := o.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer o.Stop(ctx)

	job, _, _ := o.Submit(ctx, "alice", orchestrator.Spec{Agent: "AlphaCal", DatasetID: "vlass/T10t01", GPUs: 1})
	for {
		j, _ := o.Get(ctx, job.ID)
		if j.State.Terminal() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p, err := o.Provenance(ctx, job.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("submitted by", p.SubmittedBy, "spec", string(p.Spec))
	fmt.Println("agent", p.Agent, strings.HasPrefix(p.AgentVersion, "alphacal@sha256:"))
	for _, a := range p.Attempts {
		fmt.Println("attempt", a.Number, "on", a.Backend, "by", a.Replica, a.TaskID == orchestrator.TaskID(job.ID, a.Number), a.Outcome)
	}
	fmt.Println("outputs recorded:", len(p.Outputs) > 0)
	// Output:
	// submitted by alice spec {"agent":"AlphaCal","dataset_id":"vlass/T10t01","gpus":1,"priority":0}
	// agent alphacal true
	// attempt 1 on simgpu by replica-1 true COMPLETED
	// outputs recorded: true
}
