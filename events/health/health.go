// Package health is the system health consumer of Cosmic Horizons: it
// watches the event transport's connectivity, the router handlers' outcomes
// (handled, failed attempts, dead letters) and, where the transport can tell,
// the consumer lag; it answers readiness checks and publishes a
// "system.health" event on a period.
//
// Wire it in three places: [Monitor.Middleware] on the router (counts every
// handler attempt), [Monitor.DeadLetter] from the dead-letter consumer, and
// [Monitor.Run] in the background to publish reports. [Register] adds the
// system.health type and its schema to a catalogue.
package health

import (
	"context"
	"embed"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/horizons/events"
)

// TypeSystemHealth is the event type of a health report.
const TypeSystemHealth events.Type = "system.health"

// Statuses of a report.
const (
	Healthy   = "healthy"
	Degraded  = "degraded"
	Unhealthy = "unhealthy"
)

// Defaults used where Config leaves a field zero.
const (
	DefaultInterval = 30 * time.Second
	// DefaultDegradedErrorRate is the share of failed handler attempts
	// since the previous report above which the status is degraded.
	DefaultDegradedErrorRate = 0.05
	// DefaultDegradedLag is the consumer lag (messages) above which the
	// status is degraded.
	DefaultDegradedLag = 1000
)

//go:embed schemas/system.health.json
var schemaFS embed.FS

// Schema returns the JSON schema of the system.health payload.
func Schema() *events.Schema {
	raw, err := schemaFS.ReadFile("schemas/system.health.json")
	if err != nil {
		panic(err)
	}
	s, err := events.ParseSchema(raw)
	if err != nil {
		panic(err)
	}
	return s
}

// Register adds the system.health type to cat.
func Register(cat *events.Catalogue) {
	cat.Register(events.Entry{Type: TypeSystemHealth, Description: "a periodic report of the event system's health", Schema: Schema()})
}

// Report is the payload of a system.health event.
type Report struct {
	// Component names the process reporting.
	Component string `json:"component"`
	// Status is Healthy, Degraded or Unhealthy.
	Status string `json:"status"`
	// Transport is the transport scheme (mem, kafka, amqp, postgres, ...).
	Transport string `json:"transport"`
	// Connected is whether the transport answered the probe.
	Connected bool `json:"connected"`
	// Error is the probe's error (never a credential), or why the status
	// is not healthy.
	Error string `json:"error,omitempty"`
	// Handled, Failed and DeadLetters count, since the start, handler
	// attempts that succeeded, attempts that failed, and dead letters.
	Handled     int64 `json:"handled"`
	Failed      int64 `json:"failed"`
	DeadLetters int64 `json:"dead_letters"`
	// ErrorRate is the share of failed attempts since the previous report.
	ErrorRate float64 `json:"error_rate"`
	// Lag is the consumer lag per consumer group, where the transport
	// tells it.
	Lag map[string]int64 `json:"lag,omitempty"`
	// CheckedAt is when the report was made (RFC 3339).
	CheckedAt string `json:"checked_at"`
}

// Config configures a Monitor; nil or zero means the defaults.
type Config struct {
	// Component names the reporting process; empty means "horizons".
	Component string
	// Transport is the transport's name for reports.
	Transport string
	// Probe checks the transport's connectivity; nil means always
	// connected.
	Probe func(ctx context.Context) error
	// Lag returns the consumer lag per group; nil means unknown.
	Lag func(ctx context.Context) (map[string]int64, error)
	// Interval is the period of Run; zero means DefaultInterval.
	Interval time.Duration
	// DegradedErrorRate and DegradedLag are the thresholds of a degraded
	// status; zero means the defaults.
	DegradedErrorRate float64
	DegradedLag       int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Monitor counts outcomes and makes reports. It is safe for concurrent use.
type Monitor struct {
	cfg                   Config
	handled, failed, dead atomic.Int64

	mu                   sync.Mutex
	lastHandled, lastBad int64
	last                 Report
}

// New returns a Monitor.
func New(cfg *Config) *Monitor {
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.Component == "" {
		c.Component = "horizons"
	}
	if c.Transport == "" {
		c.Transport = "unknown"
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.DegradedErrorRate <= 0 {
		c.DegradedErrorRate = DefaultDegradedErrorRate
	}
	if c.DegradedLag <= 0 {
		c.DegradedLag = DefaultDegradedLag
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Monitor{cfg: c}
}

// Middleware counts every handler attempt's outcome. Add it to a router
// after events.NewRouter, so it sits inside the retry layer and sees each
// attempt.
func (m *Monitor) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err != nil {
			m.failed.Add(1)
		} else {
			m.handled.Add(1)
		}
		return out, err
	}
}

// SetLag sets (or replaces) the function that reports consumer lag, for
// consumers whose groups are known only after New.
func (m *Monitor) SetLag(lag func(ctx context.Context) (map[string]int64, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.Lag = lag
}

// DeadLetter counts one dead letter.
func (m *Monitor) DeadLetter() { m.dead.Add(1) }

// Check probes the transport and returns a fresh report.
func (m *Monitor) Check(ctx context.Context) Report {
	r := Report{
		Component: m.cfg.Component, Transport: m.cfg.Transport, Connected: true,
		Handled: m.handled.Load(), Failed: m.failed.Load(), DeadLetters: m.dead.Load(),
		CheckedAt: m.cfg.Now().UTC().Format(time.RFC3339Nano),
	}
	if m.cfg.Probe != nil {
		if err := m.cfg.Probe(ctx); err != nil {
			r.Connected = false
			r.Error = "transport unreachable: " + err.Error()
		}
	}
	m.mu.Lock()
	lagFn := m.cfg.Lag
	m.mu.Unlock()
	if lagFn != nil {
		if lag, err := lagFn(ctx); err == nil {
			r.Lag = lag
		} else if r.Error == "" {
			r.Error = "consumer lag unknown: " + err.Error()
		}
	}
	m.mu.Lock()
	dh, df := r.Handled-m.lastHandled, r.Failed-m.lastBad
	m.lastHandled, m.lastBad = r.Handled, r.Failed
	if dh+df > 0 {
		r.ErrorRate = float64(df) / float64(dh+df)
	}
	r.Status = Healthy
	switch {
	case !r.Connected:
		r.Status = Unhealthy
	case r.ErrorRate > m.cfg.DegradedErrorRate:
		r.Status = Degraded
		r.Error = fmt.Sprintf("error rate %.3f above %.3f", r.ErrorRate, m.cfg.DegradedErrorRate)
	default:
		for g, l := range r.Lag {
			if l > m.cfg.DegradedLag {
				r.Status = Degraded
				r.Error = fmt.Sprintf("consumer group %s lags %d messages (above %d)", g, l, m.cfg.DegradedLag)
				break
			}
		}
	}
	m.last = r
	m.mu.Unlock()
	return r
}

// Ready probes the transport only (no counters move): nil when it answers.
func (m *Monitor) Ready(ctx context.Context) error {
	if m.cfg.Probe == nil {
		return nil
	}
	if err := m.cfg.Probe(ctx); err != nil {
		return fmt.Errorf("event transport %s unreachable: %w", m.cfg.Transport, err)
	}
	return nil
}

// Last returns the last report Check made.
func (m *Monitor) Last() Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// Event returns r as a system.health event about the component.
func Event(r Report) (events.Event, error) {
	return events.New(TypeSystemHealth, r.Component, r)
}

// Publish makes a report and publishes it to topic on bus.
func (m *Monitor) Publish(ctx context.Context, bus *events.Bus, topic string) (Report, error) {
	pctx, cancel := context.WithTimeout(ctx, m.cfg.Interval)
	defer cancel()
	r := m.Check(pctx)
	e, err := Event(r)
	if err != nil {
		return r, err
	}
	if err := bus.Publish(pctx, topic, e); err != nil {
		return r, fmt.Errorf("health: publish report: %w", err)
	}
	return r, nil
}

// Run publishes a report to topic every Interval until ctx is done. A
// failed publish is passed to onErr (may be nil) and the loop goes on.
func (m *Monitor) Run(ctx context.Context, bus *events.Bus, topic string, onErr func(error)) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.Publish(ctx, bus, topic); err != nil && onErr != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}
