package analytics

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/horizons/events"
)

//go:embed schemas/alert.json
var schemaFS embed.FS

// The alert event types and the topic they are published on.
const (
	TypeAlertRaised   events.Type = "alert.raised"
	TypeAlertResolved events.Type = "alert.resolved"
	TopicAlerts                   = "horizons.alerts"
)

// ErrAlertNotFound reports an alert id that is not known.
var ErrAlertNotFound = errors.New("analytics: alert not found")

// AlertSchema returns the JSON Schema of the alert.* payloads.
func AlertSchema() *events.Schema {
	raw, err := schemaFS.ReadFile("schemas/alert.json")
	if err != nil {
		panic(err) // embedded at build time
	}
	s, err := events.ParseSchema(raw)
	if err != nil {
		panic(err)
	}
	return s
}

// RegisterAlertEvents adds alert.raised and alert.resolved to cat.
func RegisterAlertEvents(cat *events.Catalogue) {
	s := AlertSchema()
	cat.Register(events.Entry{Type: TypeAlertRaised, Description: "an alert rule's condition held for its for-duration", Schema: s})
	cat.Register(events.Entry{Type: TypeAlertResolved, Description: "a firing alert's condition cleared past its hysteresis", Schema: s})
}

// RuleKind is how a Rule turns a series into a value.
type RuleKind string

// The rule kinds.
const (
	// KindThreshold compares the latest step's value.
	KindThreshold RuleKind = "threshold"
	// KindRate compares the change per second between the first and the
	// latest value in the window.
	KindRate RuleKind = "rate"
	// KindAnomaly compares the absolute anomaly score (Detect) of the
	// latest value; Threshold is the score, and Clear the score below
	// which it resolves.
	KindAnomaly RuleKind = "anomaly"
)

// Rule is an alert rule over one metric.
type Rule struct {
	// Name identifies the rule (required, unique).
	Name string   `json:"name"`
	Kind RuleKind `json:"kind"`
	// Metric, Filter and Agg select the series; Agg empty means avg.
	Metric string `json:"metric"`
	Filter Labels `json:"filter"`
	Agg    Agg    `json:"agg"`
	// Step is the series step (zero: 1 min); Window the lookback (zero:
	// 1 h, for anomaly rules the detector's history).
	Step   time.Duration `json:"step"`
	Window time.Duration `json:"window"`
	// Below makes the rule fire when the value falls under Threshold
	// (utilisation drops) instead of rising over it.
	Below bool `json:"below"`
	// Threshold raises; Clear resolves (hysteresis: with Below false the
	// alert resolves once the value is under Clear). Clear zero means
	// Threshold.
	Threshold float64 `json:"threshold"`
	Clear     float64 `json:"clear"`
	// For is how long the condition must hold before the alert fires.
	For time.Duration `json:"for"`
	// Detector configures anomaly rules (its Threshold is ignored: the
	// rule's Threshold is used).
	Detector DetectorConfig `json:"-"`
}

// Evidence is the series an alert was decided on.
type Evidence struct {
	Agg         Agg         `json:"agg"`
	Filter      Labels      `json:"filter"`
	StepSeconds float64     `json:"step_seconds"`
	Times       []time.Time `json:"times"`
	Values      []*float64  `json:"values"`
}

// Alert is one raised alert.
type Alert struct {
	ID         string     `json:"alert_id"`
	Rule       string     `json:"rule"`
	Kind       RuleKind   `json:"kind"`
	Metric     string     `json:"metric"`
	State      string     `json:"state"` // firing or resolved
	Value      float64    `json:"value"`
	Threshold  float64    `json:"threshold"`
	RaisedAt   time.Time  `json:"raised_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	Evidence   Evidence   `json:"evidence"`
	// Acknowledged, AckedBy and AckedAt record an acknowledgement.
	Acknowledged bool       `json:"acknowledged"`
	AckedBy      string     `json:"acked_by,omitempty"`
	AckedAt      *time.Time `json:"acked_at,omitempty"`
	// SilencedUntil, when in the future, mutes the rule: it neither
	// raises nor notifies until then.
	SilencedUntil *time.Time `json:"silenced_until,omitempty"`
}

// AlertConfig configures an AlertEngine; nil or zero means the defaults.
type AlertConfig struct {
	// Publish sends an alert event (to the bus); nil drops them.
	Publish func(ctx context.Context, e events.Event) error
	// Notify tells the admins over the live channels; nil skips it.
	Notify func(ctx context.Context, e events.Event) error
	// Keep bounds the alerts remembered (the oldest resolved go first);
	// zero means 1000.
	Keep int
	// Logger; nil means slog.Default(). Now is the clock.
	Logger *slog.Logger
	Now    func() time.Time
}

type ruleState struct {
	breachSince time.Time // zero when the condition does not hold
	firing      *Alert
	silenced    time.Time
}

// AlertEngine evaluates rules against a Store: a rule whose condition holds
// for its For duration raises an alert (alert.raised on the bus with the
// evidence, and a notification to the admins); the alert resolves
// (alert.resolved) once the value is back past Clear. It is safe for
// concurrent use.
type AlertEngine struct {
	s     *Store
	rules []Rule
	cfg   AlertConfig

	mu     sync.Mutex
	state  map[string]*ruleState
	alerts []*Alert
}

// NewAlertEngine checks the rules and returns an engine.
func NewAlertEngine(s *Store, rules []Rule, cfg *AlertConfig) (*AlertEngine, error) {
	if s == nil {
		return nil, errors.New("analytics: alert engine store is nil")
	}
	e := &AlertEngine{s: s, state: map[string]*ruleState{}}
	if cfg != nil {
		e.cfg = *cfg
	}
	if e.cfg.Keep <= 0 {
		e.cfg.Keep = 1000
	}
	if e.cfg.Logger == nil {
		e.cfg.Logger = slog.Default()
	}
	if e.cfg.Now == nil {
		e.cfg.Now = time.Now
	}
	for i, r := range rules {
		if r.Name == "" {
			return nil, fmt.Errorf("analytics: rule %d: field name is empty", i)
		}
		if _, dup := e.state[r.Name]; dup {
			return nil, fmt.Errorf("analytics: rule %q: name given twice", r.Name)
		}
		if r.Kind != KindThreshold && r.Kind != KindRate && r.Kind != KindAnomaly {
			return nil, fmt.Errorf("analytics: rule %q: field kind is %q, want threshold, rate or anomaly", r.Name, r.Kind)
		}
		if _, ok := s.metrics[r.Metric]; !ok {
			return nil, fmt.Errorf("%w: rule %q: field metric is %q", ErrUnknownMetric, r.Name, r.Metric)
		}
		if r.Step == 0 {
			r.Step = time.Minute
		}
		if r.Window == 0 {
			r.Window = time.Hour
		}
		if r.Clear == 0 {
			r.Clear = r.Threshold
		}
		if !r.Below && r.Clear > r.Threshold || r.Below && r.Clear < r.Threshold {
			return nil, fmt.Errorf("analytics: rule %q: field clear %v is past threshold %v (hysteresis must sit on the quiet side)", r.Name, r.Clear, r.Threshold)
		}
		if r.For < 0 {
			return nil, fmt.Errorf("analytics: rule %q: field for is %v, want >= 0", r.Name, r.For)
		}
		q := Query{Metric: r.Metric, Filter: r.Filter, From: time.Unix(0, 0), To: time.Unix(0, 0).Add(r.Window), Step: r.Step, Agg: r.Agg}
		if err := s.check(&q); err != nil {
			return nil, fmt.Errorf("analytics: rule %q: %w", r.Name, err)
		}
		e.rules = append(e.rules, r)
		e.state[r.Name] = &ruleState{}
	}
	return e, nil
}

// Rules returns the engine's rules.
func (e *AlertEngine) Rules() []Rule { return append([]Rule(nil), e.rules...) }

// value computes the rule's current value from its series; ok is false
// without enough data.
func (e *AlertEngine) value(r Rule, res *Result) (float64, bool, error) {
	if len(res.Series) == 0 {
		return 0, false, nil
	}
	vals := res.Series[0].Values
	last, first := -1, -1
	for i, v := range vals {
		if v != nil {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if last < 0 {
		return 0, false, nil
	}
	switch r.Kind {
	case KindThreshold:
		return *vals[last], true, nil
	case KindRate:
		if first == last {
			return 0, false, nil
		}
		return (*vals[last] - *vals[first]) / (float64(last-first) * r.Step.Seconds()), true, nil
	}
	cfg := r.Detector
	cfg.Threshold = math.Min(r.Threshold, r.Clear)
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultDetectThreshold
	}
	an, err := DetectSeries(res.Series[0], cfg)
	if err != nil {
		return 0, false, err
	}
	for _, a := range an {
		if a.Index == last {
			return math.Abs(a.Score), true, nil
		}
	}
	return 0, true, nil
}

// Evaluate runs every rule once at the engine's Now.
func (e *AlertEngine) Evaluate(ctx context.Context) error {
	now := e.cfg.Now().UTC()
	var errs []error
	for _, r := range e.rules {
		res, err := e.s.Query(ctx, Query{Metric: r.Metric, Filter: r.Filter, From: now.Add(-r.Window), To: now, Step: r.Step, Agg: r.Agg})
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
			continue
		}
		v, ok, err := e.value(r, res)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
			continue
		}
		if !ok {
			continue
		}
		ev := Evidence{Agg: res.Agg, Filter: r.Filter, StepSeconds: res.StepSeconds, Times: res.Times, Values: res.Series[0].Values}
		if err := e.step(ctx, r, v, now, ev); err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (e *AlertEngine) step(ctx context.Context, r Rule, v float64, now time.Time, ev Evidence) error {
	e.mu.Lock()
	st := e.state[r.Name]
	breach := v > r.Threshold
	clear := v < r.Clear
	if r.Below {
		breach, clear = v < r.Threshold, v > r.Clear
	}
	var out events.Type
	var a Alert
	switch {
	case st.firing == nil && breach:
		if st.breachSince.IsZero() {
			st.breachSince = now
		}
		if now.Sub(st.breachSince) >= r.For && !now.Before(st.silenced) {
			al := &Alert{ID: uuid.NewString(), Rule: r.Name, Kind: r.Kind, Metric: r.Metric, State: "firing", Value: v, Threshold: r.Threshold, RaisedAt: now, Evidence: ev}
			if !st.silenced.IsZero() {
				t := st.silenced
				al.SilencedUntil = &t
			}
			st.firing = al
			e.keepLocked(al)
			out, a = TypeAlertRaised, *al
		}
	case st.firing == nil:
		st.breachSince = time.Time{}
	case clear:
		al := st.firing
		t := now
		al.State, al.ResolvedAt, al.Value, al.Evidence = "resolved", &t, v, ev
		st.firing, st.breachSince = nil, time.Time{}
		out, a = TypeAlertResolved, *al
	}
	silenced := now.Before(st.silenced)
	e.mu.Unlock()
	if out == "" {
		return nil
	}
	return e.emit(ctx, out, a, silenced)
}

func (e *AlertEngine) emit(ctx context.Context, t events.Type, a Alert, silenced bool) error {
	data := map[string]any{"alert_id": a.ID, "rule": a.Rule, "kind": a.Kind, "metric": a.Metric, "state": a.State, "value": a.Value, "threshold": a.Threshold,
		"raised_at": a.RaisedAt.Format(time.RFC3339Nano), "evidence": a.Evidence}
	if a.ResolvedAt != nil {
		data["resolved_at"] = a.ResolvedAt.Format(time.RFC3339Nano)
	}
	ev, err := events.New(t, a.ID, data)
	if err != nil {
		return err
	}
	ev.Source, ev.CorrelationID, ev.Sequence = "horizons-analytics", a.ID, 1
	if t == TypeAlertResolved {
		ev.Sequence = 2
		ev.Time = *a.ResolvedAt
	} else {
		ev.Time = a.RaisedAt
	}
	var errs []error
	if e.cfg.Publish != nil {
		if err := e.cfg.Publish(ctx, ev); err != nil {
			errs = append(errs, fmt.Errorf("publish %s: %w", t, err))
		}
	}
	if e.cfg.Notify != nil && !silenced {
		if err := e.cfg.Notify(ctx, ev); err != nil {
			errs = append(errs, fmt.Errorf("notify %s: %w", t, err))
		}
	}
	e.cfg.Logger.Info("alert", "type", t, "rule", a.Rule, "value", a.Value, "threshold", a.Threshold)
	return errors.Join(errs...)
}

func (e *AlertEngine) keepLocked(a *Alert) {
	e.alerts = append(e.alerts, a)
	if len(e.alerts) <= e.cfg.Keep {
		return
	}
	for i, x := range e.alerts {
		if x.State == "resolved" {
			e.alerts = append(e.alerts[:i], e.alerts[i+1:]...)
			return
		}
	}
	e.alerts = e.alerts[1:]
}

// Alerts returns copies of the alerts, newest first; open keeps only the
// firing ones.
func (e *AlertEngine) Alerts(open bool) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []Alert{}
	for _, a := range e.alerts {
		if open && a.State != "firing" {
			continue
		}
		out = append(out, *a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RaisedAt.After(out[j].RaisedAt) })
	return out
}

func (e *AlertEngine) find(id string) (*Alert, error) {
	for _, a := range e.alerts {
		if a.ID == id {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrAlertNotFound, id)
}

// Acknowledge records that by has seen alert id.
func (e *AlertEngine) Acknowledge(id, by string) (Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.find(id)
	if err != nil {
		return Alert{}, err
	}
	if !a.Acknowledged {
		t := e.cfg.Now().UTC()
		a.Acknowledged, a.AckedBy, a.AckedAt = true, by, &t
	}
	return *a, nil
}

// Silence mutes the rule of alert id until until: it raises no alert and
// notifies no one meanwhile (a firing alert still resolves).
func (e *AlertEngine) Silence(id string, until time.Time) (Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.find(id)
	if err != nil {
		return Alert{}, err
	}
	u := until.UTC()
	e.state[a.Rule].silenced = u
	a.SilencedUntil = &u
	return *a, nil
}

// Run evaluates every interval until ctx is done.
func (e *AlertEngine) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.cfg.Logger.Warn("alert evaluation", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
