// Package jobmetrics is the metrics consumer of Cosmic Horizons: it turns the
// job lifecycle events into Prometheus metrics.
//
//	horizons_job_events_total{type,agent,state}        events consumed
//	horizons_jobs{state}                              jobs per current state (QUEUED is the queue depth)
//	horizons_job_run_seconds{agent,state}             job.running to the terminal event
//	horizons_job_turnaround_seconds{agent,state}      job.submitted to the terminal event
//
// Durations are measured between the events' own times, not when they
// arrive, so a backlog or a replay gives the same figures. job.failed counts
// as an outcome: a job that is retried afterwards (job.queued after
// job.failed) is observed once per failed attempt and once at its final
// outcome. Each job's events
// are applied in sequence order: a redelivered or older event (a sequence at
// or below the last one applied for that job) is counted in
// horizons_job_events_skipped_total and otherwise ignored.
//
// The Collector is a consumer like any other: add [Collector.Handle] to a
// router (events.NewRouter) with its own consumer group.
package jobmetrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosmic-horizons/horizons/events"
)

// DefaultFinishedWindow is how many finished jobs a Collector remembers (to
// skip their late redeliveries) when Config.FinishedWindow is zero.
const DefaultFinishedWindow = 100000

// Config configures a Collector; nil or zero means the defaults.
type Config struct {
	// FinishedWindow bounds the finished jobs remembered; zero means
	// DefaultFinishedWindow.
	FinishedWindow int
	// DurationBuckets are the histogram buckets in seconds; nil means
	// 1 s to about 1.5 days in powers of 2.
	DurationBuckets []float64
}

type jobState struct {
	seq         int64
	state       string
	agent       string
	submittedAt float64 // Unix seconds, 0 when unknown
	runningAt   float64
}

// Collector keeps the metrics. It is safe for concurrent use.
type Collector struct {
	eventsTotal *prometheus.CounterVec
	skipped     prometheus.Counter
	jobs        *prometheus.GaugeVec
	run         *prometheus.HistogramVec
	turnaround  *prometheus.HistogramVec

	mu       sync.Mutex
	live     map[string]*jobState
	finished map[string]jobState // jobs whose last event was terminal
	ring     []string            // finished job ids, oldest first, for eviction
	next     int
}

// New registers the metrics on reg and returns the Collector.
func New(reg prometheus.Registerer, cfg *Config) (*Collector, error) {
	if reg == nil {
		return nil, errors.New("jobmetrics: registerer is nil")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	buckets := cfg.DurationBuckets
	if buckets == nil {
		buckets = prometheus.ExponentialBuckets(1, 2, 18)
	}
	c := &Collector{
		eventsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "horizons_job_events_total", Help: "Job lifecycle events consumed, by type, agent and state.",
		}, []string{"type", "agent", "state"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "horizons_job_events_skipped_total", Help: "Redelivered or out-of-date job events ignored.",
		}),
		jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "horizons_jobs", Help: "Jobs per current state; state=QUEUED is the queue depth.",
		}, []string{"state"}),
		run: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "horizons_job_run_seconds", Help: "Time from job.running to the terminal event.", Buckets: buckets,
		}, []string{"agent", "state"}),
		turnaround: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "horizons_job_turnaround_seconds", Help: "Time from job.submitted to the terminal event.", Buckets: buckets,
		}, []string{"agent", "state"}),
		live:     map[string]*jobState{},
		finished: map[string]jobState{},
		ring:     make([]string, finishedWindow(cfg)),
	}
	for _, col := range []prometheus.Collector{c.eventsTotal, c.skipped, c.jobs, c.run, c.turnaround} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("jobmetrics: register: %w", err)
		}
	}
	return c, nil
}

func finishedWindow(cfg *Config) int {
	if cfg.FinishedWindow > 0 {
		return cfg.FinishedWindow
	}
	return DefaultFinishedWindow
}

func terminal(state string) bool {
	return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED"
}

// Handle consumes one event; it is an events.HandlerFunc. Events that are not
// job.* are ignored; a job event whose payload does not decode is an error
// wrapping events.ErrPermanent (retrying cannot help).
func (c *Collector) Handle(ctx context.Context, e events.Event) error {
	if !strings.HasPrefix(string(e.Type), "job.") {
		return nil
	}
	var d events.JobData
	if err := e.Decode(&d); err != nil {
		return fmt.Errorf("%w: %w", events.ErrPermanent, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	js := c.live[e.Subject]
	if js == nil {
		js = &jobState{}
		if f, ok := c.finished[e.Subject]; ok {
			// A late redelivery, or a failed job being retried.
			*js = f
			delete(c.finished, e.Subject)
		}
		c.live[e.Subject] = js
	}
	if e.Sequence <= js.seq {
		c.skipped.Inc()
		return nil
	}
	js.seq = e.Sequence
	if d.Agent != "" {
		js.agent = d.Agent
	}
	c.eventsTotal.WithLabelValues(string(e.Type), js.agent, d.State).Inc()

	if d.State != js.state {
		if js.state != "" {
			c.jobs.WithLabelValues(js.state).Dec()
		}
		js.state = d.State
		if !terminal(d.State) {
			c.jobs.WithLabelValues(d.State).Inc()
		}
	}
	t := float64(e.Time.UnixNano()) / 1e9
	switch e.Type {
	case events.JobSubmitted:
		js.submittedAt = t
	case events.JobRunning:
		js.runningAt = t
	}
	if terminal(d.State) {
		if js.runningAt > 0 {
			c.run.WithLabelValues(js.agent, d.State).Observe(t - js.runningAt)
		}
		if js.submittedAt > 0 {
			c.turnaround.WithLabelValues(js.agent, d.State).Observe(t - js.submittedAt)
		}
		js.runningAt = 0
		delete(c.live, e.Subject)
		c.remember(e.Subject, *js)
	}
	return nil
}

// remember keeps a finished job's state so that late redeliveries are skipped
// and a retry (job.queued after job.failed) continues it, evicting the oldest
// finished job beyond the window.
func (c *Collector) remember(id string, js jobState) {
	if _, ok := c.finished[id]; !ok {
		if old := c.ring[c.next]; old != "" {
			delete(c.finished, old)
		}
		c.ring[c.next] = id
		c.next = (c.next + 1) % len(c.ring)
	}
	c.finished[id] = js
}
