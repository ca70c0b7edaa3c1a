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

// ErrEngineClosed reports use of a closed AlertEngine.
var ErrEngineClosed = errors.New("analytics: alert engine closed")

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
//
// When the Store's driver is an AlertDriver (Memory and SQL are), every
// change of state (a raise, a resolve, a for-duration starting or ending,
// an acknowledgement, a silence) is saved before its event is emitted, and
// NewAlertEngine loads the saved state: a new engine on the same store
// keeps the open alerts open (it raises no second alert.raised), and keeps
// the acknowledgements and silences.
type AlertEngine struct {
	s     *Store
	ad    AlertDriver // nil: state in memory only
	rules []Rule
	cfg   AlertConfig

	mu     sync.Mutex
	closed bool
	state  map[string]*ruleState
	alerts []*Alert
}

// NewAlertEngine checks the rules, loads the saved alert state from the
// Store's driver (when it is an AlertDriver) and returns an engine.
func NewAlertEngine(ctx context.Context, s *Store, rules []Rule, cfg *AlertConfig) (*AlertEngine, error) {
	if s == nil {
		return nil, errors.New("analytics: alert engine store is nil")
	}
	e := &AlertEngine{s: s, state: map[string]*ruleState{}}
	e.ad, _ = s.d.(AlertDriver)
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
	if err := e.load(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// load restores the saved alerts and rule states; alerts past Keep are
// dropped from the driver too.
func (e *AlertEngine) load(ctx context.Context) error {
	if e.ad == nil {
		return nil
	}
	as, rs, err := e.ad.LoadAlerts(ctx)
	if err != nil {
		return fmt.Errorf("analytics: load alert state: %w", err)
	}
	var drop []string
	for i := range as {
		if v := e.victimLocked(); v >= 0 {
			drop = append(drop, e.alerts[v].ID)
			e.alerts = append(e.alerts[:v], e.alerts[v+1:]...)
		}
		e.alerts = append(e.alerts, &as[i])
	}
	for _, a := range e.alerts {
		if st := e.state[a.Rule]; st != nil && a.State == "firing" {
			st.firing = a // rules removed since keep their alerts listed only
		}
	}
	for _, r := range rs {
		if st := e.state[r.Rule]; st != nil {
			st.breachSince, st.silenced = r.BreachSince, r.SilencedUntil
		}
	}
	if len(drop) > 0 {
		if err := e.ad.SaveAlerts(ctx, AlertChange{Drop: drop}); err != nil {
			return fmt.Errorf("analytics: drop old alerts: %w", err)
		}
	}
	return nil
}

// saveLocked stores c when the driver keeps alert state; e.mu is held, so
// saves happen in the order of the changes.
func (e *AlertEngine) saveLocked(ctx context.Context, c AlertChange) error {
	if e.ad == nil {
		return nil
	}
	if err := e.ad.SaveAlerts(ctx, c); err != nil {
		return fmt.Errorf("analytics: save alert state: %w", err)
	}
	return nil
}

func (st *ruleState) saved(rule string) RuleState {
	return RuleState{Rule: rule, BreachSince: st.breachSince, SilencedUntil: st.silenced}
}

// Close stops the engine: Evaluate, Acknowledge and Silence then return
// ErrEngineClosed and nothing more is saved. The Store stays open.
func (e *AlertEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return nil
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
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return ErrEngineClosed
	}
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
	if e.closed {
		e.mu.Unlock()
		return ErrEngineClosed
	}
	st := e.state[r.Name]
	next := *st // applied once saved
	breach := v > r.Threshold
	clear := v < r.Clear
	if r.Below {
		breach, clear = v < r.Threshold, v > r.Clear
	}
	var out events.Type
	var a Alert
	var c AlertChange
	victim := -1
	switch {
	case st.firing == nil && breach:
		if next.breachSince.IsZero() {
			next.breachSince = now
		}
		if now.Sub(next.breachSince) >= r.For && !now.Before(next.silenced) {
			al := &Alert{ID: uuid.NewString(), Rule: r.Name, Kind: r.Kind, Metric: r.Metric, State: "firing", Value: v, Threshold: r.Threshold, RaisedAt: now, Evidence: ev}
			if !next.silenced.IsZero() {
				t := next.silenced
				al.SilencedUntil = &t
			}
			next.firing = al
			out, a = TypeAlertRaised, *al
			if victim = e.victimLocked(); victim >= 0 {
				c.Drop = []string{e.alerts[victim].ID}
			}
		}
	case st.firing == nil:
		next.breachSince = time.Time{}
	case clear:
		a = *st.firing
		t := now
		a.State, a.ResolvedAt, a.Value, a.Evidence = "resolved", &t, v, ev
		next.firing, next.breachSince = nil, time.Time{}
		out = TypeAlertResolved
	}
	if out != "" {
		c.Alerts = []Alert{a}
	}
	if !next.breachSince.Equal(st.breachSince) {
		c.Rules = []RuleState{next.saved(r.Name)}
	}
	if len(c.Alerts)+len(c.Rules) > 0 {
		if err := e.saveLocked(ctx, c); err != nil {
			e.mu.Unlock()
			return err // nothing changed: the next evaluation tries again
		}
	}
	switch out {
	case TypeAlertRaised:
		if victim >= 0 {
			e.alerts = append(e.alerts[:victim], e.alerts[victim+1:]...)
		}
		e.alerts = append(e.alerts, next.firing)
	case TypeAlertResolved:
		*st.firing = a
	}
	*st = next
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

// victimLocked returns the index of the alert to forget before one more is
// added (the oldest resolved, else the oldest), or -1 while under Keep.
func (e *AlertEngine) victimLocked() int {
	if len(e.alerts) < e.cfg.Keep {
		return -1
	}
	for i, x := range e.alerts {
		if x.State == "resolved" {
			return i
		}
	}
	return 0
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

// Acknowledge records (and saves) that by has seen alert id.
func (e *AlertEngine) Acknowledge(ctx context.Context, id, by string) (Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return Alert{}, ErrEngineClosed
	}
	a, err := e.find(id)
	if err != nil {
		return Alert{}, err
	}
	if !a.Acknowledged {
		n := *a
		t := e.cfg.Now().UTC()
		n.Acknowledged, n.AckedBy, n.AckedAt = true, by, &t
		if err := e.saveLocked(ctx, AlertChange{Alerts: []Alert{n}}); err != nil {
			return Alert{}, err
		}
		*a = n
	}
	return *a, nil
}

// Silence mutes the rule of alert id until until: it raises no alert and
// notifies no one meanwhile (a firing alert still resolves).
func (e *AlertEngine) Silence(ctx context.Context, id string, until time.Time) (Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return Alert{}, ErrEngineClosed
	}
	a, err := e.find(id)
	if err != nil {
		return Alert{}, err
	}
	u := until.UTC()
	n := *a
	n.SilencedUntil = &u
	c := AlertChange{Alerts: []Alert{n}}
	st := e.state[a.Rule]
	if st != nil {
		rs := st.saved(a.Rule)
		rs.SilencedUntil = u
		c.Rules = []RuleState{rs}
	}
	if err := e.saveLocked(ctx, c); err != nil {
		return Alert{}, err
	}
	if st != nil {
		st.silenced = u
	}
	*a = n
	return *a, nil
}

// Run evaluates every interval until ctx is done or the engine is closed.
func (e *AlertEngine) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := e.Evaluate(ctx)
		if errors.Is(err, ErrEngineClosed) {
			return
		}
		if err != nil && ctx.Err() == nil {
			e.cfg.Logger.Warn("alert evaluation", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
