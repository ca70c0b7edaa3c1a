package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
	"github.com/cosmic-horizons/horizons/orchestrator/orchestratortest"
)

func TestConformance(t *testing.T) {
	orchestratortest.RunStore(t, func(t *testing.T) orchestrator.Store { return memstore.New(nil) })
}

// With RetainFinished the store still passes the suite (the suite never
// finishes more jobs than the limit) ...
func TestConformanceWithRetention(t *testing.T) {
	orchestratortest.RunStore(t, func(t *testing.T) orchestrator.Store {
		return memstore.New(&memstore.Config{RetainFinished: 100})
	})
}

// ... and drops the oldest finished jobs, with their events and keys,
// while live jobs stay whatever their age.
func TestRetainFinished(t *testing.T) {
	ctx := context.Background()
	s := memstore.New(&memstore.Config{RetainFinished: 2})
	live := orchestratortest.NewJob("alice", 0)
	if _, _, err := s.CreateJob(ctx, live, []events.Event{orchestratortest.Event(t, live, events.JobSubmitted)}); err != nil {
		t.Fatal(err)
	}
	var done []*orchestrator.Job
	for i := range 4 {
		j := orchestratortest.NewJob("alice", time.Duration(i+1)*time.Second)
		j.IdempotencyKey = fmt.Sprintf("k%d", i)
		if _, _, err := s.CreateJob(ctx, j, []events.Event{orchestratortest.Event(t, j, events.JobSubmitted)}); err != nil {
			t.Fatal(err)
		}
		n := j.Clone()
		n.State = orchestrator.StateCancelled
		n.Version++
		if err := s.UpdateJob(ctx, n, j.Version, []events.Event{orchestratortest.Event(t, n, events.JobCancelled)}); err != nil {
			t.Fatal(err)
		}
		done = append(done, n)
	}
	for i, j := range done {
		_, err := s.GetJob(ctx, j.ID)
		evs, _ := s.JobEvents(ctx, j.ID, 0)
		_, kerr := s.JobByIdempotencyKey(ctx, "alice", j.IdempotencyKey)
		if i < 2 && (!errors.Is(err, orchestrator.ErrNotFound) || len(evs) != 0 || !errors.Is(kerr, orchestrator.ErrNotFound)) {
			t.Fatalf("finished job %d not dropped: %v, %d events, key %v", i, err, len(evs), kerr)
		}
		if i >= 2 && (err != nil || len(evs) != 2 || kerr != nil) {
			t.Fatalf("finished job %d dropped too early: %v, %d events, key %v", i, err, len(evs), kerr)
		}
	}
	if _, err := s.GetJob(ctx, live.ID); err != nil {
		t.Fatalf("live job dropped: %v", err)
	}
	if n, _ := s.CountJobs(ctx, "", nil); n != 3 {
		t.Fatalf("%d jobs kept, want 3 (one live, two finished)", n)
	}
}
