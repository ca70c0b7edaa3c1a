package analytics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/analytics"
	"github.com/cosmic-horizons/horizons/events"
)

func jobEvent(t *testing.T, typ events.Type, id string, seq int64, at time.Time, d events.JobData) events.Event {
	t.Helper()
	d.JobID = id
	e, err := events.New(typ, id, d)
	if err != nil {
		t.Fatal(err)
	}
	e.Sequence, e.Time = seq, at
	return e
}

func TestCollectorTurnsEventsIntoSeries(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	s, _ := analytics.New(analytics.NewMemory(), nil)
	c, err := analytics.NewCollector(s, &analytics.CollectorConfig{JobWindow: 10})
	if err != nil {
		t.Fatal(err)
	}
	base := events.JobData{Owner: "alice", Agent: "imaging"}
	run := base
	run.Backend = "simgpu"
	evs := []events.Event{
		jobEvent(t, events.JobSubmitted, "j1", 1, t0, base),
		jobEvent(t, events.JobQueued, "j1", 2, t0.Add(time.Second), base),
		jobEvent(t, events.JobRunning, "j1", 3, t0.Add(11*time.Second), run),
		jobEvent(t, events.JobFailed, "j1", 4, t0.Add(41*time.Second), run),
		jobEvent(t, events.JobQueued, "j1", 5, t0.Add(50*time.Second), run),
		jobEvent(t, events.JobRunning, "j1", 6, t0.Add(55*time.Second), run),
		jobEvent(t, events.JobCompleted, "j1", 7, t0.Add(115*time.Second), run),
	}
	for _, e := range evs {
		if err := c.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Redeliveries change nothing.
	for _, e := range evs[2:4] {
		if err := c.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	sum := func(metric string, agg analytics.Agg, f analytics.Labels) float64 {
		t.Helper()
		r, err := s.Query(ctx, analytics.Query{Metric: metric, Filter: f, From: t0, To: t0.Add(time.Hour), Step: time.Hour, Agg: agg})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Series) != 1 || r.Series[0].Values[0] == nil {
			t.Fatalf("%s %s: %+v", metric, agg, r.Series)
		}
		return *r.Series[0].Values[0]
	}
	by := analytics.Labels{Agent: "imaging", Backend: "simgpu", User: "alice"}
	for _, c := range []struct {
		metric string
		agg    analytics.Agg
		f      analytics.Labels
		want   float64
	}{
		{analytics.MetricEvents, analytics.AggCount, analytics.Labels{}, 7},
		{analytics.MetricQueueWait, analytics.AggSum, by, 10 + 5},
		{analytics.MetricRunTime, analytics.AggMax, by, 60},
		{analytics.MetricRunTime, analytics.AggCount, by, 2},
		{analytics.MetricJobFailure, analytics.AggAvg, by, 0.5},
		{analytics.MetricTurnaround, analytics.AggMax, analytics.Labels{Agent: "imaging"}, 115},
	} {
		if got := sum(c.metric, c.agg, c.f); got != c.want {
			t.Errorf("%s %s %+v = %v, want %v", c.metric, c.agg, c.f, got, c.want)
		}
	}
	bad := jobEvent(t, events.JobQueued, "j2", 1, t0, base)
	bad.Data = []byte(`"nope"`)
	if err := c.Handle(ctx, bad); !errors.Is(err, events.ErrPermanent) {
		t.Errorf("undecodable payload: %v, want ErrPermanent", err)
	}
}

// TestCollectorWriteFailureIsRetried: a failed write leaves the job state
// alone, so the redelivered event is recorded.
func TestCollectorWriteFailureIsRetried(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	s, _ := analytics.New(analytics.NewMemory(), nil)
	c, _ := analytics.NewCollector(s, nil)
	e := jobEvent(t, events.JobSubmitted, "j1", 1, t0, events.JobData{Owner: "bob", Agent: "alphacal"})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Handle(cctx, e); err == nil {
		t.Fatal("write with a cancelled context succeeded")
	}
	if err := c.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	r, err := s.Query(ctx, analytics.Query{Metric: analytics.MetricEvents, From: t0, To: t0.Add(time.Minute), Step: time.Minute, Agg: analytics.AggCount})
	if err != nil || len(r.Series) != 1 || *r.Series[0].Values[0] != 1 {
		t.Fatalf("after a retry: %+v, %v; want one event", r, err)
	}
}

func TestSamplerRecordsProbes(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	s, _ := analytics.New(analytics.NewMemory(), nil)
	sp, err := analytics.NewSampler(s, map[string]analytics.Probe{
		"gpu": func(ctx context.Context, now time.Time) ([]analytics.Point, error) {
			return []analytics.Point{{Metric: analytics.MetricGPUUtilization, Labels: analytics.Labels{Backend: "sim"}, Value: 0.75}}, nil
		},
		"broken": func(ctx context.Context, now time.Time) ([]analytics.Point, error) {
			return nil, errors.New("lag unknown")
		},
	}, &analytics.SamplerConfig{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.SampleOnce(ctx); err == nil {
		t.Fatal("a failing probe was not reported")
	}
	r, err := s.Query(ctx, analytics.Query{Metric: analytics.MetricGPUUtilization, From: t0, To: t0.Add(time.Minute), Step: time.Minute})
	if err != nil || len(r.Series) != 1 || *r.Series[0].Values[0] != 0.75 {
		t.Fatalf("gpu utilisation: %+v, %v", r, err)
	}
}
