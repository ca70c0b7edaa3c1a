package cacheevents_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/cacheevents"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
)

var ctx = context.Background()

func jobEvent(t *testing.T, typ events.Type, job, state string, seq int64) events.Event {
	t.Helper()
	e, err := events.New(typ, job, events.JobData{JobID: job, Owner: "alice", Agent: "imaging", DatasetID: "vlass-1.2", GPUs: 1, State: state, Backend: "simgpu", Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.Sequence = seq
	return e
}

// A job's state change, published on the bus, drops its cached entries and
// only its.
func TestInvalidatesThroughTheBus(t *testing.T) {
	c, err := cache.NewMemoryCache(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.Set(ctx, "job/j1", "QUEUED", time.Hour, cache.JobTag("j1"))
	_ = c.Set(ctx, "job/j1/result", "partial", time.Hour, cache.JobTag("j1"))
	_ = c.Set(ctx, "job/j2", "QUEUED", time.Hour, cache.JobTag("j2"))

	inv, err := cacheevents.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus := membus.NewBus(nil)
	defer bus.Close()
	r, err := events.NewRouter(events.RouterConfig{MaxRetries: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r.AddConsumerHandler("cache", events.TopicJobs, bus.Subscriber(), inv.Handler().Watermill(bus.Codec()))
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = r.Run(rctx) }()
	<-r.Running()
	defer r.Close()

	if err := bus.Publish(ctx, events.TopicJobs, jobEvent(t, events.JobRunning, "j1", "RUNNING", 3)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for inv.Invalidations() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var s string
	for _, k := range []string{"job/j1", "job/j1/result"} {
		if err := c.Get(ctx, k, &s); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("%s after job.running of j1 = %q, %v; want ErrNotFound", k, s, err)
		}
	}
	if err := c.Get(ctx, "job/j2", &s); err != nil || s != "QUEUED" {
		t.Errorf("another job's entry was dropped: %q, %v", s, err)
	}
}

type failing struct{ tags []string }

func (f *failing) DeleteTag(_ context.Context, tag string) error {
	f.tags = append(f.tags, tag)
	return cache.ErrUnavailable
}

func TestFilterAndErrors(t *testing.T) {
	f := &failing{}
	inv, _ := cacheevents.New(f, &cacheevents.Config{Types: []events.Type{events.JobCompleted}})
	if err := inv.Handle(ctx, jobEvent(t, events.JobRunning, "j1", "RUNNING", 1)); err != nil || len(f.tags) != 0 {
		t.Fatalf("a filtered-out type invalidated: %v %v", err, f.tags)
	}
	err := inv.Handle(ctx, jobEvent(t, events.JobCompleted, "j1", "COMPLETED", 2))
	if !errors.Is(err, cache.ErrUnavailable) || !strings.Contains(err.Error(), `"job:j1"`) {
		t.Fatalf("Handle with the cache failing = %v, want ErrUnavailable naming the tag (so the router retries)", err)
	}
	lax, _ := cacheevents.New(&failing{}, &cacheevents.Config{IgnoreUnavailable: true})
	if err := lax.Handle(ctx, jobEvent(t, events.JobCompleted, "j1", "COMPLETED", 2)); err != nil || lax.Partial() != 1 || lax.Invalidations() != 1 {
		t.Fatalf("IgnoreUnavailable: %v, partial %d", err, lax.Partial())
	}
	all, _ := cacheevents.New(&failing{}, nil)
	if err := all.Handle(ctx, events.Event{Type: "system.health", Subject: "x"}); err != nil {
		t.Fatalf("a non-job event = %v", err)
	}
	if _, err := cacheevents.New(nil, nil); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Fatalf("New(nil) = %v", err)
	}
}
