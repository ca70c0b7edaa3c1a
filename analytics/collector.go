package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cosmic-horizons/horizons/events"
)

// DefaultGroup is the consumer group the Collector reads the job topic in.
const DefaultGroup = "horizons-analytics"

// DefaultJobWindow bounds the jobs a Collector tracks when
// CollectorConfig.JobWindow is zero.
const DefaultJobWindow = 100000

// CollectorConfig configures a Collector; nil or zero means the defaults.
type CollectorConfig struct {
	// JobWindow bounds the jobs whose timestamps are remembered (the
	// oldest are forgotten first); zero means DefaultJobWindow.
	JobWindow int
}

type track struct {
	seq                        int64
	submitted, queued, running time.Time
	backend                    string
	terminal                   bool
}

// Collector is the analytics consumer: it turns job lifecycle events into
// series, measured between the events' own times (a backlog or a replay
// gives the same figures):
//
//	job_queue_wait_seconds  job.queued → job.running            {agent, backend, user}
//	job_run_seconds         job.running → job.completed/failed  {agent, backend, user}
//	job_turnaround_seconds  job.submitted → final event         {agent, backend, user}
//	job_failure             1 per job.failed, 0 per job.completed
//	events                  1 per event                         {agent, backend, user}
//
// Each job's events apply in sequence order; a redelivered or older event
// is skipped. A point is recorded only when the store accepted the write,
// so a failed write is retried by the router without loss. It is safe for
// concurrent use.
type Collector struct {
	s      *Store
	window int

	mu   sync.Mutex
	jobs map[string]*track
	ring []string
	next int
}

// NewCollector returns a Collector writing into s.
func NewCollector(s *Store, cfg *CollectorConfig) (*Collector, error) {
	if s == nil {
		return nil, errors.New("analytics: collector store is nil")
	}
	if cfg == nil {
		cfg = &CollectorConfig{}
	}
	w := cfg.JobWindow
	if w <= 0 {
		w = DefaultJobWindow
	}
	return &Collector{s: s, window: w, jobs: map[string]*track{}, ring: make([]string, w)}, nil
}

// Handle consumes one event; it is an events.HandlerFunc. Non-job events
// are ignored; a payload that does not decode wraps events.ErrPermanent.
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
	old, known := c.jobs[e.Subject]
	if known && e.Sequence <= old.seq {
		return nil
	}
	tr := track{}
	if known {
		tr = *old
	}
	tr.seq = e.Sequence
	if d.Backend != "" {
		tr.backend = d.Backend
	}
	at := e.Time.UTC()
	labels := Labels{Agent: d.Agent, Backend: tr.backend, User: d.Owner}
	pts := []Point{{Metric: MetricEvents, Labels: labels, Time: at, Value: 1}}
	secs := func(from time.Time) float64 { return at.Sub(from).Seconds() }
	switch e.Type {
	case events.JobSubmitted:
		tr.submitted = at
	case events.JobQueued:
		tr.queued, tr.running = at, time.Time{}
	case events.JobRunning:
		if !tr.queued.IsZero() && !at.Before(tr.queued) {
			pts = append(pts, Point{Metric: MetricQueueWait, Labels: labels, Time: at, Value: secs(tr.queued)})
		}
		tr.running, tr.queued = at, time.Time{}
	case events.JobCompleted, events.JobFailed, events.JobCancelled:
		if e.Type != events.JobCancelled {
			if !tr.running.IsZero() && !at.Before(tr.running) {
				pts = append(pts, Point{Metric: MetricRunTime, Labels: labels, Time: at, Value: secs(tr.running)})
			}
			fail := 0.0
			if e.Type == events.JobFailed {
				fail = 1
			}
			pts = append(pts, Point{Metric: MetricJobFailure, Labels: labels, Time: at, Value: fail})
		}
		if !tr.submitted.IsZero() && !at.Before(tr.submitted) {
			pts = append(pts, Point{Metric: MetricTurnaround, Labels: labels, Time: at, Value: secs(tr.submitted)})
		}
		tr.running, tr.queued = time.Time{}, time.Time{}
	}
	if err := c.s.Write(ctx, pts...); err != nil {
		return fmt.Errorf("analytics: collect %s event %s: %w", e.Type, e.ID, err)
	}
	if !known {
		if id := c.ring[c.next]; id != "" {
			delete(c.jobs, id)
		}
		c.ring[c.next] = e.Subject
		c.next = (c.next + 1) % c.window
		c.jobs[e.Subject] = &tr
	} else {
		*old = tr
	}
	return nil
}

// Probe reads gauges at a moment, for a Sampler.
type Probe func(ctx context.Context, now time.Time) ([]Point, error)

// DefaultSampleInterval is the Sampler period when SamplerConfig.Interval
// is zero.
const DefaultSampleInterval = 15 * time.Second

// SamplerConfig configures a Sampler; nil or zero means the defaults.
type SamplerConfig struct {
	// Interval is the sampling period; zero means DefaultSampleInterval.
	Interval time.Duration
	// Logger receives probe failures; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Sampler records the points of its probes into a Store at an interval:
// GPU utilisation and memory per backend, queue depth, consumer lag, dead
// letters. A failing probe is logged and the others still record.
type Sampler struct {
	s      *Store
	probes map[string]Probe
	cfg    SamplerConfig
}

// NewSampler returns a Sampler for the named probes.
func NewSampler(s *Store, probes map[string]Probe, cfg *SamplerConfig) (*Sampler, error) {
	if s == nil {
		return nil, errors.New("analytics: sampler store is nil")
	}
	sp := &Sampler{s: s, probes: probes}
	if cfg != nil {
		sp.cfg = *cfg
	}
	if sp.cfg.Interval < 0 {
		return nil, fmt.Errorf("analytics: SamplerConfig.Interval is %v, want > 0", sp.cfg.Interval)
	}
	if sp.cfg.Interval == 0 {
		sp.cfg.Interval = DefaultSampleInterval
	}
	if sp.cfg.Logger == nil {
		sp.cfg.Logger = slog.Default()
	}
	if sp.cfg.Now == nil {
		sp.cfg.Now = time.Now
	}
	return sp, nil
}

// SampleOnce runs every probe and writes what they return; the error joins
// the probes' and the write's errors, each naming its probe.
func (sp *Sampler) SampleOnce(ctx context.Context) error {
	now := sp.cfg.Now().UTC()
	var errs []error
	var pts []Point
	for name, p := range sp.probes {
		got, err := p(ctx, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("probe %s: %w", name, err))
			continue
		}
		for _, pt := range got {
			if pt.Time.IsZero() {
				pt.Time = now
			}
			pts = append(pts, pt)
		}
	}
	if err := sp.s.Write(ctx, pts...); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run samples every Interval until ctx is done; with retain it also
// applies the Store's retention once an hour.
func (sp *Sampler) Run(ctx context.Context, retain bool) {
	t := time.NewTicker(sp.cfg.Interval)
	defer t.Stop()
	lastRetain := time.Time{}
	for {
		if err := sp.SampleOnce(ctx); err != nil && ctx.Err() == nil {
			sp.cfg.Logger.Warn("analytics sample", "err", err)
		}
		if now := sp.cfg.Now(); retain && now.Sub(lastRetain) >= time.Hour {
			lastRetain = now
			if n, err := sp.s.Retain(ctx); err != nil && ctx.Err() == nil {
				sp.cfg.Logger.Warn("analytics retention", "err", err)
			} else if n > 0 {
				sp.cfg.Logger.Info("analytics retention", "removed", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
