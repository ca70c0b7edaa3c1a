package simgpu_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
)

// runJobs runs n AlphaCal jobs through the orchestrator (memstore, membus)
// on a simgpu cluster with cfg, and returns the final jobs and their
// events.
func runJobs(t *testing.T, cfg simgpu.Config, n, attempts int) ([]*orchestrator.Job, map[string][]events.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.SpeedUp, cfg.Logger = 20000, log
	cfg.DatasetGB = func(string) float64 { return 10 }
	gpu, err := simgpu.Open(&cfg, &backends.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	bus := membus.NewBus(nil)
	defer bus.Close()
	o, err := orchestrator.New(memstore.New(nil), bus, &orchestrator.Config{
		Backends: []*backends.Backend{gpu}, Logger: log,
		Retry:        orchestrator.RetryPolicy{MaxAttempts: attempts, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond},
		PollInterval: 2 * time.Millisecond, ScheduleInterval: 2 * time.Millisecond, OutboxInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer o.Stop(context.Background())
	var ids []string
	for i := range n {
		j, _, err := o.Submit(ctx, "alice", orchestrator.Spec{Agent: "alphacal", DatasetID: fmt.Sprintf("vlass/T%02d", i), GPUs: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	var jobs []*orchestrator.Job
	for _, id := range ids {
		for {
			j, err := o.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.State.Terminal() {
				jobs = append(jobs, j)
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("job %s still %s", id, j.State)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	evs := map[string][]events.Event{}
	for _, id := range ids {
		if evs[id], err = o.Events(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return jobs, evs
}

// Injected failures reach the orchestrator as retryable task failures with
// their kind in the reason: every attempt fails at FailureRate 1.
func TestOrchestratorRetriesInjectedFailures(t *testing.T) {
	jobs, evs := runJobs(t, simgpu.Config{FailureRate: 1, Seed: 3}, 4, 3)
	kinds := map[string]int{}
	for _, j := range jobs {
		if j.State != orchestrator.StateFailed || j.Attempts != 3 || !strings.HasPrefix(j.Error, "simulated ") {
			t.Errorf("job %s: %s after %d attempts (%q), want FAILED after 3 with a simulated failure", j.ID, j.State, j.Attempts, j.Error)
		}
		failed, requeued := 0, 0
		for _, e := range evs[j.ID] {
			switch e.Type {
			case events.JobFailed:
				failed++
				for _, k := range []string{simgpu.FailNodeLoss, simgpu.FailOOM, simgpu.FailPreemption} {
					if strings.Contains(string(e.Data), "simulated "+k) {
						kinds[k]++
					}
				}
			case events.JobQueued:
				requeued++
			}
		}
		if failed != 3 || requeued != 3 { // the first queued plus two retries
			t.Errorf("job %s: %d job.failed and %d job.queued events, want 3 and 3", j.ID, failed, requeued)
		}
	}
	if total := kinds[simgpu.FailNodeLoss] + kinds[simgpu.FailOOM] + kinds[simgpu.FailPreemption]; total != 12 {
		t.Errorf("failure kinds in the events %v, want 12 in all", kinds)
	}
}

// At rate 0.5 some jobs fail first and complete on a retry (each attempt
// is a new task id, so a new draw).
func TestOrchestratorRetryThenComplete(t *testing.T) {
	jobs, _ := runJobs(t, simgpu.Config{FailureRate: 0.5, Seed: 11, NodeDowntime: time.Minute}, 40, 6)
	retried := 0
	for _, j := range jobs {
		if j.State == orchestrator.StateCompleted && j.Attempts > 1 {
			retried++
		}
		if j.State != orchestrator.StateCompleted && j.State != orchestrator.StateFailed {
			t.Errorf("job %s ended %s", j.ID, j.State)
		}
	}
	// P(a job fails once then completes) >= 1/4, so none of 40 is ~1e-5.
	if retried == 0 {
		t.Error("no job completed after a retry")
	}
}
