package jobmetrics_test

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/jobmetrics"
)

// Queue depth and run time from a job's events.
func Example() {
	reg := prometheus.NewRegistry()
	c, _ := jobmetrics.New(reg, nil)
	start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for i, s := range []struct {
		typ   events.Type
		state string
		at    time.Duration
	}{
		{events.JobSubmitted, "SUBMITTED", 0}, {events.JobQueued, "QUEUED", time.Second},
		{events.JobRunning, "RUNNING", 4 * time.Second}, {events.JobCompleted, "COMPLETED", 94 * time.Second},
	} {
		e, _ := events.New(s.typ, "job-1", events.JobData{JobID: "job-1", Agent: "imaging", State: s.state})
		e.Sequence, e.Time = int64(i+1), start.Add(s.at)
		_ = c.Handle(context.Background(), e)
		if s.state == "QUEUED" {
			fmt.Println("queue depth while queued:", value(reg, "horizons_jobs", "QUEUED"))
		}
	}
	fmt.Println("queue depth after:", value(reg, "horizons_jobs", "QUEUED"))
	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() == "horizons_job_run_seconds" {
			h := f.GetMetric()[0].GetHistogram()
			fmt.Println("run seconds:", h.GetSampleSum(), "over", h.GetSampleCount(), "job")
		}
	}
	// Output:
	// queue depth while queued: 1
	// queue depth after: 0
	// run seconds: 90 over 1 job
}

func value(reg *prometheus.Registry, name, state string) float64 {
	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == state {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
