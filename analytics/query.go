package analytics

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Agg is an aggregation over the samples of one step.
type Agg string

// The aggregations.
const (
	AggAvg   Agg = "avg"
	AggP50   Agg = "p50"
	AggP95   Agg = "p95"
	AggMax   Agg = "max"
	AggMin   Agg = "min"
	AggSum   Agg = "sum"
	AggCount Agg = "count"
)

// Aggs lists the valid aggregations.
var Aggs = []Agg{AggAvg, AggP50, AggP95, AggMax, AggMin, AggSum, AggCount}

func (a Agg) percentile() (float64, bool) {
	switch a {
	case AggP50:
		return 0.50, true
	case AggP95:
		return 0.95, true
	}
	return 0, false
}

// Group-by dimensions.
const (
	ByAgent   = "agent"
	ByBackend = "backend"
	ByUser    = "user"
)

// Query asks for one metric over [From, To) in aligned steps.
type Query struct {
	// Metric is the metric name (required).
	Metric string
	// Filter restricts the series; an empty label matches any value.
	Filter Labels
	// From and To bound the range; From < To, To-From at most the Store's
	// MaxRange. From is aligned down and To up to a multiple of Step.
	From, To time.Time
	// Step is the width of one output point; zero picks one giving at
	// most 500 points. (To-From)/Step may not exceed the Store's MaxPoints.
	Step time.Duration
	// Agg is the aggregation per step; empty means AggAvg.
	Agg Agg
	// GroupBy splits the result into one series per distinct value of
	// these labels (ByAgent, ByBackend, ByUser); empty means one series.
	GroupBy []string
}

// QueryError is a query parameter that is not acceptable. It wraps
// ErrInvalidQuery (or ErrUnknownMetric for the metric).
type QueryError struct {
	// Param is the parameter's name as used by the REST API ("metric",
	// "from", "to", "step", "agg", "group_by").
	Param string
	// Value is the value given.
	Value string
	// Reason says what is wrong.
	Reason string
	err    error
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("analytics: %s = %q: %s", e.Param, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidQuery or ErrUnknownMetric.
func (e *QueryError) Unwrap() error { return e.err }

func qerr(param, value, format string, args ...any) *QueryError {
	return &QueryError{Param: param, Value: value, Reason: fmt.Sprintf(format, args...), err: ErrInvalidQuery}
}

// Series is one aligned series of a Result: Values[i] belongs to
// Result.Times[i] and is nil where the step holds no sample.
type Series struct {
	Labels Labels     `json:"labels"`
	Values []*float64 `json:"values"`
}

// Result is the answer to a Query.
type Result struct {
	Metric string        `json:"metric"`
	Agg    Agg           `json:"agg"`
	From   time.Time     `json:"from"`
	To     time.Time     `json:"to"`
	Step   time.Duration `json:"-"`
	// StepSeconds is Step in seconds.
	StepSeconds float64 `json:"step_seconds"`
	// Resolution is the stored resolution the answer was computed from.
	Resolution string `json:"resolution"`
	// Approximate is true when a percentile was computed from rollup
	// bucket means because the raw samples are past their retention.
	Approximate bool        `json:"approximate"`
	Times       []time.Time `json:"times"`
	Series      []Series    `json:"series"`
	// Scanned is how many stored samples were read.
	Scanned int64 `json:"scanned"`
}

var niceSteps = []time.Duration{time.Second, 10 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour}

const autoPoints = 500

func (s *Store) check(q *Query) error {
	if q.Metric == "" {
		return qerr("metric", "", "is required; known metrics: %s", strings.Join(s.order, ", "))
	}
	if _, ok := s.metrics[q.Metric]; !ok {
		e := qerr("metric", q.Metric, "unknown metric; known metrics: %s", strings.Join(s.order, ", "))
		e.err = ErrUnknownMetric
		return e
	}
	if q.Agg == "" {
		q.Agg = AggAvg
	}
	if !slices.Contains(Aggs, q.Agg) {
		return qerr("agg", string(q.Agg), "want one of avg, p50, p95, max, min, sum, count")
	}
	if q.From.IsZero() {
		return qerr("from", "", "is required")
	}
	if q.To.IsZero() {
		return qerr("to", "", "is required")
	}
	if !q.From.Before(q.To) {
		return qerr("to", q.To.UTC().Format(time.RFC3339), "is not after from = %s", q.From.UTC().Format(time.RFC3339))
	}
	if d := q.To.Sub(q.From); d > s.maxRange {
		return qerr("from", q.From.UTC().Format(time.RFC3339), "range to-from is %v, more than the maximum %v", d, s.maxRange)
	}
	if q.Step == 0 {
		span := q.To.Sub(q.From)
		q.Step = niceSteps[len(niceSteps)-1]
		for _, st := range niceSteps {
			if span/st <= autoPoints {
				q.Step = st
				break
			}
		}
		for span/q.Step > autoPoints {
			q.Step *= 2
		}
	}
	if q.Step < time.Second || q.Step%time.Second != 0 {
		return qerr("step", q.Step.String(), "want a whole number of seconds, at least 1s")
	}
	if n := (q.To.Sub(q.From) + q.Step - 1) / q.Step; int(n) > s.maxPoints {
		return qerr("step", q.Step.String(), "too fine for the range: %d points, at most %d (use a step of at least %v)", n, s.maxPoints, (q.To.Sub(q.From)+time.Duration(s.maxPoints)-1)/time.Duration(s.maxPoints))
	}
	seen := map[string]bool{}
	for _, g := range q.GroupBy {
		if g != ByAgent && g != ByBackend && g != ByUser {
			return qerr("group_by", g, "want agent, backend or user")
		}
		if seen[g] {
			return qerr("group_by", g, "given twice")
		}
		seen[g] = true
	}
	return nil
}

// plan picks the stored resolution for q: the coarsest rollup whose width
// divides the step (fewest rows, longest retention); percentiles read raw
// samples while they are retained, else rollup means (approximate).
func (s *Store) plan(q Query) (Resolution, bool) {
	best := Raw
	for _, r := range []Resolution{Minute, Hour} {
		if q.Step%r.Width() == 0 {
			best = r
		}
	}
	if _, pct := q.Agg.percentile(); pct {
		if !q.From.Before(s.now().Add(-s.retention[Raw])) || best == Raw {
			return Raw, false
		}
		return best, true
	}
	return best, false
}

type acc struct {
	count    int64
	sum      float64
	min, max float64
	vals     []float64
}

// Query answers q: aligned series of q.Agg per step, one per group.
func (s *Store) Query(ctx context.Context, q Query) (*Result, error) {
	if err := s.check(&q); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	from := q.From.UTC().Truncate(q.Step)
	to := q.To.UTC()
	if t := to.Truncate(q.Step); !t.Equal(to) {
		to = t.Add(q.Step)
	}
	n := int(to.Sub(from) / q.Step)
	res, approx := s.plan(q)
	_, pct := q.Agg.percentile()
	group := func(l Labels) Labels {
		var g Labels
		for _, by := range q.GroupBy {
			switch by {
			case ByAgent:
				g.Agent = l.Agent
			case ByBackend:
				g.Backend = l.Backend
			case ByUser:
				g.User = l.User
			}
		}
		return g
	}
	groups := map[Labels][]acc{}
	var scanned int64
	var tooMany bool
	var lastLabels Labels
	var lastAccs []acc
	var haveLast bool
	err := s.d.Scan(ctx, res, Selector{Metric: q.Metric, Labels: q.Filter, Read: append([]string{}, q.GroupBy...)}, from, to, func(b Bucket) bool {
		scanned++
		if scanned%65536 == 0 && ctx.Err() != nil {
			return false
		}
		i := int(b.Start.Sub(from) / q.Step)
		if i < 0 || i >= n || b.Count <= 0 {
			return true
		}
		// Samples come series by series: reuse the last group's slots
		// while the labels repeat.
		if !haveLast || b.Labels != lastLabels {
			g := group(b.Labels)
			accs, ok := groups[g]
			if !ok {
				if len(groups) >= s.maxSeries {
					tooMany = true
					return false
				}
				accs = make([]acc, n)
				groups[g] = accs
			}
			lastLabels, lastAccs, haveLast = b.Labels, accs, true
		}
		a := &lastAccs[i]
		if a.count == 0 {
			a.min, a.max = b.Min, b.Max
		} else {
			a.min, a.max = math.Min(a.min, b.Min), math.Max(a.max, b.Max)
		}
		a.count += b.Count
		a.sum += b.Sum
		if pct {
			a.vals = append(a.vals, b.Sum/float64(b.Count))
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("analytics: query %s: %w", q.Metric, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if tooMany {
		return nil, qerr("group_by", strings.Join(q.GroupBy, ","), "more than %d series; filter by agent, backend or user", s.maxSeries)
	}
	out := &Result{Metric: q.Metric, Agg: q.Agg, From: from, To: to, Step: q.Step, StepSeconds: q.Step.Seconds(),
		Resolution: res.String(), Approximate: approx, Times: make([]time.Time, n), Series: []Series{}, Scanned: scanned}
	for i := range n {
		out.Times[i] = from.Add(time.Duration(i) * q.Step)
	}
	for g, accs := range groups {
		sr := Series{Labels: g, Values: make([]*float64, n)}
		for i := range accs {
			if v, ok := accs[i].value(q.Agg); ok {
				sr.Values[i] = &v
			}
		}
		out.Series = append(out.Series, sr)
	}
	sort.Slice(out.Series, func(i, j int) bool {
		a, b := out.Series[i].Labels, out.Series[j].Labels
		if a.Agent != b.Agent {
			return a.Agent < b.Agent
		}
		if a.Backend != b.Backend {
			return a.Backend < b.Backend
		}
		return a.User < b.User
	})
	return out, nil
}

func (a *acc) value(agg Agg) (float64, bool) {
	if a.count == 0 {
		if agg == AggCount {
			return 0, true
		}
		return 0, false
	}
	switch agg {
	case AggAvg:
		return a.sum / float64(a.count), true
	case AggMax:
		return a.max, true
	case AggMin:
		return a.min, true
	case AggSum:
		return a.sum, true
	case AggCount:
		return float64(a.count), true
	}
	p, _ := agg.percentile()
	return Quantile(a.vals, p), true
}

// Quantile returns the p-quantile (0 <= p <= 1) of xs by linear
// interpolation between closest ranks; it sorts xs in place. It is NaN for
// an empty xs.
func Quantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sort.Float64s(xs)
	h := p * float64(len(xs)-1)
	lo := int(math.Floor(h))
	if lo >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[lo] + (h-float64(lo))*(xs[lo+1]-xs[lo])
}
