package events_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/events"
)

type history map[string][]events.Event

func (h history) JobEvents(ctx context.Context, jobID string, after int64) ([]events.Event, error) {
	var out []events.Event
	for _, e := range h[jobID] {
		if e.Sequence > after {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestReplayJob(t *testing.T) {
	mk := func(seq int64) events.Event { return newEvent(t, events.JobQueued, "job-1", "QUEUED", seq) }
	h := history{"job-1": {mk(3), mk(1), mk(2), mk(4)}} // stored out of order
	var got []int64
	collect := func(ctx context.Context, e events.Event) error { got = append(got, e.Sequence); return nil }

	n, err := events.ReplayJob(context.Background(), h, "job-1", 1, collect)
	if err != nil || n != 3 || len(got) != 3 || got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Fatalf("ReplayJob = %d, %v; delivered %v, want [2 3 4]", n, err, got)
	}

	dup := history{"job-1": {mk(1), mk(2), mk(2)}}
	got = nil
	n, err = events.ReplayJob(context.Background(), dup, "job-1", 0, collect)
	if !errors.Is(err, events.ErrInvalidEvent) || n != 2 || !strings.Contains(err.Error(), "sequence 2 repeats") {
		t.Fatalf("repeated sequence: %d, %v", n, err)
	}

	failing := func(ctx context.Context, e events.Event) error {
		if e.Sequence == 3 {
			return errors.New("consumer down")
		}
		return nil
	}
	n, err = events.ReplayJob(context.Background(), h, "job-1", 0, failing)
	if n != 2 || err == nil || !strings.Contains(err.Error(), "consumer down") {
		t.Fatalf("failing consumer: %d, %v", n, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := events.ReplayJob(ctx, h, "job-1", 0, collect); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	wrong := history{"job-1": {newEvent(t, events.JobQueued, "job-2", "QUEUED", 1)}}
	if _, err := events.ReplayJob(context.Background(), wrong, "job-1", 0, collect); !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("foreign event: %v", err)
	}
	if _, err := events.ReplayJob(context.Background(), nil, "job-1", 0, collect); err == nil {
		t.Fatal("nil source accepted")
	}
}
