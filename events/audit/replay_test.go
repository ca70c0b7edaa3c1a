package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/audit"
	"github.com/cosmic-horizons/horizons/events/bustest"
)

func TestReplayRangeInChainOrder(t *testing.T) {
	ctx := context.Background()
	chain := audit.New(audit.NewMemStore())
	t0 := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	var all []events.Event
	for i := 0; i < 10; i++ {
		job := "job-a"
		if i%2 == 1 {
			job = "job-b"
		}
		e := bustest.JobEvent(t, events.JobProgress, job, int64(i/2+1))
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		all = append(all, e)
		if _, _, err := chain.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	collect := func(ctx context.Context, e events.Event) error { got = append(got, e.ID); return nil }
	n, err := chain.ReplayRange(ctx, t0.Add(2*time.Minute), t0.Add(7*time.Minute), "", collect)
	if err != nil || n != 5 {
		t.Fatalf("range: %d %v", n, err)
	}
	for i, id := range got {
		if id != all[i+2].ID {
			t.Fatalf("replayed %v, want events 2..6 in order", got)
		}
	}
	got = nil
	if n, err := chain.ReplayRange(ctx, t0, time.Time{}, "job-b", collect); err != nil || n != 5 || got[0] != all[1].ID || got[4] != all[9].ID {
		t.Fatalf("job-b open range: %d %v %v", n, err, got)
	}
	boom := errors.New("consumer down")
	n, err = chain.ReplayRange(ctx, t0, time.Time{}, "", func(ctx context.Context, e events.Event) error {
		if e.ID == all[3].ID {
			return boom
		}
		return nil
	})
	if n != 3 || !errors.Is(err, boom) {
		t.Fatalf("stops at the first error: %d %v", n, err)
	}
	if _, err := chain.ReplayRange(ctx, t0, t0, "", collect); err == nil {
		t.Fatal("empty range accepted")
	}
}
