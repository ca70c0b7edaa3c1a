package analytics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sentinel errors, wrapped with %w.
var (
	// ErrInvalidQuery reports a query with a bad parameter; the error is a
	// *QueryError naming the parameter and its value.
	ErrInvalidQuery = errors.New("analytics: invalid query")
	// ErrUnknownMetric reports a metric name the Store does not know.
	ErrUnknownMetric = errors.New("analytics: unknown metric")
	// ErrInvalidPoint reports a point that cannot be stored (no metric, no
	// time, NaN or infinite value).
	ErrInvalidPoint = errors.New("analytics: invalid point")
	// ErrClosed reports use of a closed Store.
	ErrClosed = errors.New("analytics: store closed")
)

// Labels are the dimensions of a series. Empty means "not applicable".
type Labels struct {
	Agent   string `json:"agent,omitempty"`
	Backend string `json:"backend,omitempty"`
	User    string `json:"user,omitempty"`
}

// Point is one raw sample of a metric.
type Point struct {
	Metric string
	Labels Labels
	Time   time.Time
	Value  float64
}

// Resolution is the granularity a Driver keeps samples at.
type Resolution int

// The resolutions, finest first.
const (
	// Raw keeps every point as written.
	Raw Resolution = iota
	// Minute keeps one bucket (count, sum, min, max) per series and minute.
	Minute
	// Hour keeps one bucket per series and hour.
	Hour
)

// Resolutions lists every resolution, finest first.
var Resolutions = []Resolution{Raw, Minute, Hour}

// Width is the bucket width of r (zero for Raw).
func (r Resolution) Width() time.Duration {
	switch r {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	}
	return 0
}

// String returns "raw", "1m" or "1h".
func (r Resolution) String() string {
	switch r {
	case Raw:
		return "raw"
	case Minute:
		return "1m"
	case Hour:
		return "1h"
	}
	return fmt.Sprintf("Resolution(%d)", int(r))
}

// Bucket is a summary of the samples of one series in [Start, Start+width):
// a raw point is a Bucket with Count 1 and Sum = Min = Max = its value.
type Bucket struct {
	Metric string
	Labels Labels
	Start  time.Time
	Count  int64
	Sum    float64
	Min    float64
	Max    float64
}

// Selector chooses the series a scan reads: Metric is required, an empty
// label matches any value.
type Selector struct {
	Metric string
	Labels Labels
	// Read names the labels (ByAgent, ByBackend, ByUser) the caller
	// reads from the samples; a driver may leave the others empty. Nil
	// means all.
	Read []string
}

func (s Selector) match(l Labels) bool {
	return (s.Labels.Agent == "" || s.Labels.Agent == l.Agent) &&
		(s.Labels.Backend == "" || s.Labels.Backend == l.Backend) &&
		(s.Labels.User == "" || s.Labels.User == l.User)
}

// Driver is what a storage implementation provides. Drivers are used by a
// Store, which validates input, computes the rollups and plans queries;
// the conformance suite in package analyticstest checks every driver.
type Driver interface {
	// Write stores raw points and adds the rollup buckets into the
	// existing buckets of the same series and start (count and sum add,
	// min and max combine), atomically where the driver can.
	Write(ctx context.Context, raw []Point, rollups map[Resolution][]Bucket) error
	// Scan calls fn for each sample of resolution res matching sel with
	// from <= Start < to, in no particular order; raw points come as
	// buckets of count 1. fn returning false stops the scan.
	Scan(ctx context.Context, res Resolution, sel Selector, from, to time.Time, fn func(Bucket) bool) error
	// DeleteBefore removes the samples of res that start before t and
	// returns how many it removed.
	DeleteBefore(ctx context.Context, res Resolution, t time.Time) (int64, error)
	// Close releases the driver's resources (not a database handle it was
	// given).
	Close() error
}

// Metric describes one known metric.
type Metric struct {
	// Name is the metric name used in queries.
	Name string `json:"name"`
	// Unit is the unit of its values ("s", "ratio", "count", "bytes").
	Unit string `json:"unit"`
	// Help says what a value is.
	Help string `json:"help"`
}

// The metrics the Collector and the Sampler write.
const (
	MetricQueueWait      = "job_queue_wait_seconds"
	MetricRunTime        = "job_run_seconds"
	MetricTurnaround     = "job_turnaround_seconds"
	MetricJobFailure     = "job_failure"
	MetricEvents         = "events"
	MetricQueueDepth     = "queue_depth"
	MetricGPUUtilization = "gpu_utilization"
	MetricGPUMemory      = "gpu_memory_used_ratio"
	MetricConsumerLag    = "consumer_lag"
	MetricDeadLetters    = "dead_letters"
)

// DefaultMetrics are the metrics a Store knows when Config.Metrics is nil.
func DefaultMetrics() []Metric {
	return []Metric{
		{MetricQueueWait, "s", "time from job.queued to job.running, one value per start"},
		{MetricRunTime, "s", "time from job.running to job.completed or job.failed, one value per attempt"},
		{MetricTurnaround, "s", "time from job.submitted to the final event, one value per job"},
		{MetricJobFailure, "ratio", "1 per failed attempt, 0 per completed job: avg is the error rate, count the outcomes"},
		{MetricEvents, "count", "1 per job lifecycle event consumed: count per step is the event rate"},
		{MetricQueueDepth, "count", "jobs waiting in QUEUED, sampled at every change"},
		{MetricGPUUtilization, "ratio", "mean GPU utilisation of a backend, 0 to 1, sampled"},
		{MetricGPUMemory, "ratio", "GPU memory in use over GPU memory of a backend, 0 to 1, sampled"},
		{MetricConsumerLag, "count", "messages not yet consumed, summed over the consumer groups, sampled"},
		{MetricDeadLetters, "count", "dead letters stored since start, sampled"},
	}
}

// Defaults of Config.
const (
	DefaultRawRetention    = 8 * 24 * time.Hour
	DefaultMinuteRetention = 35 * 24 * time.Hour
	DefaultHourRetention   = 400 * 24 * time.Hour
	DefaultMaxPoints       = 2000
	DefaultMaxRange        = 400 * 24 * time.Hour
	DefaultMaxSeries       = 200
)

// Config configures a Store; nil or zero fields mean the defaults.
type Config struct {
	// Metrics are the known metrics; nil means DefaultMetrics.
	Metrics []Metric
	// Retention per resolution: samples older than now minus the
	// retention are removed by Retain. Zero means DefaultRawRetention,
	// DefaultMinuteRetention and DefaultHourRetention.
	RawRetention, MinuteRetention, HourRetention time.Duration
	// MaxPoints bounds the aligned points of one series in a query
	// ((to-from)/step); zero means DefaultMaxPoints.
	MaxPoints int
	// MaxRange bounds to-from of a query; zero means DefaultMaxRange.
	MaxRange time.Duration
	// MaxSeries bounds the series a grouped query returns; zero means
	// DefaultMaxSeries.
	MaxSeries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is the time-series store: it validates points, keeps the minute and
// hour rollups up to date on every write, applies retention per resolution
// and answers aligned queries. It is safe for concurrent use.
type Store struct {
	d         Driver
	metrics   map[string]Metric
	order     []string
	retention map[Resolution]time.Duration
	maxPoints int
	maxRange  time.Duration
	maxSeries int
	now       func() time.Time

	mu     sync.RWMutex
	closed bool
}

// New returns a Store on driver d.
func New(d Driver, cfg *Config) (*Store, error) {
	if d == nil {
		return nil, errors.New("analytics: driver is nil")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	s := &Store{d: d, metrics: map[string]Metric{}, now: cfg.Now,
		retention: map[Resolution]time.Duration{
			Raw: orDur(cfg.RawRetention, DefaultRawRetention), Minute: orDur(cfg.MinuteRetention, DefaultMinuteRetention), Hour: orDur(cfg.HourRetention, DefaultHourRetention),
		},
		maxPoints: cfg.MaxPoints, maxRange: orDur(cfg.MaxRange, DefaultMaxRange), maxSeries: cfg.MaxSeries}
	for r, v := range s.retention {
		if v < 0 {
			return nil, fmt.Errorf("analytics: retention of %s is %v, want > 0", r, v)
		}
	}
	if s.maxPoints <= 0 {
		s.maxPoints = DefaultMaxPoints
	}
	if s.maxSeries <= 0 {
		s.maxSeries = DefaultMaxSeries
	}
	if s.now == nil {
		s.now = time.Now
	}
	ms := cfg.Metrics
	if ms == nil {
		ms = DefaultMetrics()
	}
	for _, m := range ms {
		if m.Name == "" || strings.ContainsAny(m.Name, " \t\n") {
			return nil, fmt.Errorf("analytics: Config.Metrics: metric name %q is empty or has spaces", m.Name)
		}
		if _, dup := s.metrics[m.Name]; !dup {
			s.order = append(s.order, m.Name)
		}
		s.metrics[m.Name] = m
	}
	return s, nil
}

func orDur(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// Metrics returns the known metrics in the order they were configured.
func (s *Store) Metrics() []Metric {
	out := make([]Metric, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.metrics[n])
	}
	return out
}

// Retention returns the retention of resolution r.
func (s *Store) Retention(r Resolution) time.Duration { return s.retention[r] }

// Driver returns the Store's driver.
func (s *Store) Driver() Driver { return s.d }

// Write validates the points and stores them with their rollups. Nothing is
// written when any point is invalid.
func (s *Store) Write(ctx context.Context, pts ...Point) error {
	if len(pts) == 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	type key struct {
		metric string
		labels Labels
		start  int64
	}
	roll := map[Resolution]map[key]*Bucket{Minute: {}, Hour: {}}
	raw := make([]Point, 0, len(pts))
	for i, p := range pts {
		if _, ok := s.metrics[p.Metric]; !ok {
			return fmt.Errorf("%w: point %d: metric %q", ErrUnknownMetric, i, p.Metric)
		}
		if p.Time.IsZero() {
			return fmt.Errorf("%w: point %d of %s: field Time is zero", ErrInvalidPoint, i, p.Metric)
		}
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			return fmt.Errorf("%w: point %d of %s: field Value is %v", ErrInvalidPoint, i, p.Metric, p.Value)
		}
		p.Time = p.Time.UTC()
		raw = append(raw, p)
		for _, r := range []Resolution{Minute, Hour} {
			st := p.Time.Truncate(r.Width())
			k := key{p.Metric, p.Labels, st.UnixNano()}
			b := roll[r][k]
			if b == nil {
				roll[r][k] = &Bucket{Metric: p.Metric, Labels: p.Labels, Start: st, Count: 1, Sum: p.Value, Min: p.Value, Max: p.Value}
				continue
			}
			b.Count++
			b.Sum += p.Value
			b.Min = math.Min(b.Min, p.Value)
			b.Max = math.Max(b.Max, p.Value)
		}
	}
	rollups := map[Resolution][]Bucket{}
	for r, m := range roll {
		bs := make([]Bucket, 0, len(m))
		for _, b := range m {
			bs = append(bs, *b)
		}
		sort.Slice(bs, func(i, j int) bool { return bs[i].Start.Before(bs[j].Start) })
		rollups[r] = bs
	}
	return s.d.Write(ctx, raw, rollups)
}

// Retain removes, per resolution, the samples older than its retention and
// returns how many it removed in total.
func (s *Store) Retain(ctx context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	now := s.now()
	var total int64
	for _, r := range Resolutions {
		n, err := s.d.DeleteBefore(ctx, r, now.Add(-s.retention[r]))
		total += n
		if err != nil {
			return total, fmt.Errorf("analytics: retention of %s: %w", r, err)
		}
	}
	return total, nil
}

// Close closes the driver. Further calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.d.Close()
}
