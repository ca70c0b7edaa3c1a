package jobmetrics_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/jobmetrics"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func ev(t *testing.T, typ events.Type, job, agent, state string, seq int64, at time.Duration) events.Event {
	t.Helper()
	d := events.JobData{JobID: job, Owner: "o", Agent: agent, DatasetID: "d", GPUs: 1, State: state}
	e, err := events.New(typ, job, d)
	if err != nil {
		t.Fatal(err)
	}
	e.Sequence, e.Time = seq, t0.Add(at)
	return e
}

type gathered map[string][]*dto.Metric

func gather(t *testing.T, reg *prometheus.Registry) gathered {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := gathered{}
	for _, f := range fams {
		out[f.GetName()] = f.GetMetric()
	}
	return out
}

func (g gathered) find(name string, labels map[string]string) *dto.Metric {
	for _, m := range g[name] {
		ok := true
		for _, l := range m.GetLabel() {
			if want, has := labels[l.GetName()]; has && want != l.GetValue() {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
	return nil
}

func TestLifecycleMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := jobmetrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	feed := []events.Event{
		// job a: submitted, queued, running 10 s after submission, completed 70 s after.
		ev(t, events.JobSubmitted, "a", "imaging", "SUBMITTED", 1, 0),
		ev(t, events.JobQueued, "a", "imaging", "QUEUED", 2, time.Second),
		ev(t, events.JobRunning, "a", "imaging", "RUNNING", 3, 10*time.Second),
		ev(t, events.JobCompleted, "a", "imaging", "COMPLETED", 4, 70*time.Second),
		// job b: fails after 5 s of running, is retried, runs 20 s, completes.
		ev(t, events.JobSubmitted, "b", "alphacal", "SUBMITTED", 1, 0),
		ev(t, events.JobQueued, "b", "alphacal", "QUEUED", 2, 0),
		ev(t, events.JobRunning, "b", "alphacal", "RUNNING", 3, 2*time.Second),
		ev(t, events.JobFailed, "b", "alphacal", "FAILED", 4, 7*time.Second),
		ev(t, events.JobQueued, "b", "alphacal", "QUEUED", 5, 8*time.Second),
		ev(t, events.JobRunning, "b", "alphacal", "RUNNING", 6, 30*time.Second),
		ev(t, events.JobCompleted, "b", "alphacal", "COMPLETED", 7, 50*time.Second),
		// job c: still queued.
		ev(t, events.JobSubmitted, "c", "imaging", "SUBMITTED", 1, 0),
		ev(t, events.JobQueued, "c", "imaging", "QUEUED", 2, time.Second),
	}
	for _, e := range feed {
		if err := c.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Redeliveries: an old event of a finished job, a duplicate of a live one.
	for _, e := range []events.Event{feed[2], feed[12]} {
		if err := c.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	g := gather(t, reg)

	counter := func(typ, agent string) float64 {
		m := g.find("horizons_job_events_total", map[string]string{"type": typ, "agent": agent})
		if m == nil {
			return 0
		}
		return m.GetCounter().GetValue()
	}
	if got := counter("job.queued", "alphacal"); got != 2 {
		t.Errorf("job.queued alphacal = %v, want 2", got)
	}
	if got := counter("job.completed", "imaging"); got != 1 {
		t.Errorf("job.completed imaging = %v, want 1", got)
	}
	if got := g["horizons_job_events_skipped_total"][0].GetCounter().GetValue(); got != 2 {
		t.Errorf("skipped = %v, want 2", got)
	}
	gauge := func(state string) float64 {
		m := g.find("horizons_jobs", map[string]string{"state": state})
		if m == nil {
			return 0
		}
		return m.GetGauge().GetValue()
	}
	if gauge("QUEUED") != 1 || gauge("RUNNING") != 0 || gauge("SUBMITTED") != 0 {
		t.Errorf("jobs per state: QUEUED %v RUNNING %v SUBMITTED %v, want 1 0 0", gauge("QUEUED"), gauge("RUNNING"), gauge("SUBMITTED"))
	}
	hist := func(name, agent, state string) (uint64, float64) {
		m := g.find(name, map[string]string{"agent": agent, "state": state})
		if m == nil {
			return 0, 0
		}
		return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
	}
	check := func(name, agent, state string, n uint64, sum float64) {
		t.Helper()
		gn, gs := hist(name, agent, state)
		if gn != n || math.Abs(gs-sum) > 1e-9 {
			t.Errorf("%s{%s,%s} = %d samples sum %v, want %d sum %v", name, agent, state, gn, gs, n, sum)
		}
	}
	check("horizons_job_run_seconds", "imaging", "COMPLETED", 1, 60)
	check("horizons_job_turnaround_seconds", "imaging", "COMPLETED", 1, 70)
	check("horizons_job_run_seconds", "alphacal", "FAILED", 1, 5)
	check("horizons_job_turnaround_seconds", "alphacal", "FAILED", 1, 7)
	check("horizons_job_run_seconds", "alphacal", "COMPLETED", 1, 20)
	check("horizons_job_turnaround_seconds", "alphacal", "COMPLETED", 1, 50)
}

func TestErrorsAndOtherTypes(t *testing.T) {
	if _, err := jobmetrics.New(nil, nil); err == nil {
		t.Fatal("New accepted a nil registerer")
	}
	reg := prometheus.NewRegistry()
	c, _ := jobmetrics.New(reg, nil)
	if _, err := jobmetrics.New(reg, nil); err == nil {
		t.Fatal("a second Collector on the same registry should fail to register")
	}
	e := ev(t, events.JobQueued, "a", "imaging", "QUEUED", 1, 0)
	e.Data = []byte(`{"gpus":"many"}`)
	if err := c.Handle(context.Background(), e); !errors.Is(err, events.ErrPermanent) {
		t.Fatalf("undecodable payload: %v, want ErrPermanent", err)
	}
	other := ev(t, events.JobQueued, "a", "imaging", "QUEUED", 1, 0)
	other.Type = "system.health"
	if err := c.Handle(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if n := len(gather(t, reg)["horizons_job_events_total"]); n != 0 {
		t.Fatalf("%d event series after a non-job event", n)
	}
}

func TestFinishedWindowEvicts(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, _ := jobmetrics.New(reg, &jobmetrics.Config{FinishedWindow: 2})
	ctx := context.Background()
	for _, job := range []string{"a", "b", "c"} {
		_ = c.Handle(ctx, ev(t, events.JobCancelled, job, "imaging", "CANCELLED", 1, 0))
	}
	// a was evicted, so its redelivery counts again; c's is skipped.
	_ = c.Handle(ctx, ev(t, events.JobCancelled, "a", "imaging", "CANCELLED", 1, 0))
	_ = c.Handle(ctx, ev(t, events.JobCancelled, "c", "imaging", "CANCELLED", 1, 0))
	g := gather(t, reg)
	if got := g["horizons_job_events_skipped_total"][0].GetCounter().GetValue(); got != 1 {
		t.Fatalf("skipped = %v, want 1", got)
	}
	if got := g.find("horizons_job_events_total", map[string]string{"type": "job.cancelled"}).GetCounter().GetValue(); got != 4 {
		t.Fatalf("job.cancelled = %v, want 4", got)
	}
}
