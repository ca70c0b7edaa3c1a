package analytics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/analytics"
)

func TestQueryRejectsBadInput(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	s, err := analytics.New(analytics.NewMemory(), &analytics.Config{MaxPoints: 100, MaxRange: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ok := analytics.Query{Metric: analytics.MetricRunTime, From: t0, To: t0.Add(time.Hour), Step: time.Minute}
	if _, err := s.Query(context.Background(), ok); err != nil {
		t.Fatalf("valid query: %v", err)
	}
	for _, c := range []struct {
		name  string
		edit  func(q *analytics.Query)
		param string
		value string
	}{
		{"unknown metric", func(q *analytics.Query) { q.Metric = "cpu_magic" }, "metric", "cpu_magic"},
		{"no metric", func(q *analytics.Query) { q.Metric = "" }, "metric", ""},
		{"inverted", func(q *analytics.Query) { q.From, q.To = q.To, q.From }, "to", "2026-03-01T00:00:00Z"},
		{"empty range", func(q *analytics.Query) { q.To = q.From }, "to", "2026-03-01T00:00:00Z"},
		{"oversized", func(q *analytics.Query) { q.To = q.From.Add(72 * time.Hour); q.Step = time.Hour }, "from", "2026-03-01T00:00:00Z"},
		{"step too fine", func(q *analytics.Query) { q.Step = time.Second }, "step", "1s"},
		{"fractional step", func(q *analytics.Query) { q.Step = 1500 * time.Millisecond }, "step", "1.5s"},
		{"bad agg", func(q *analytics.Query) { q.Agg = "p99" }, "agg", "p99"},
		{"bad group", func(q *analytics.Query) { q.GroupBy = []string{"node"} }, "group_by", "node"},
		{"no from", func(q *analytics.Query) { q.From = time.Time{} }, "from", ""},
	} {
		q := ok
		c.edit(&q)
		_, err := s.Query(context.Background(), q)
		var qe *analytics.QueryError
		if !errors.As(err, &qe) || qe.Param != c.param || qe.Value != c.value {
			t.Errorf("%s: err = %v; want a QueryError for %s = %q", c.name, err, c.param, c.value)
			continue
		}
		if !errors.Is(err, analytics.ErrInvalidQuery) && !errors.Is(err, analytics.ErrUnknownMetric) {
			t.Errorf("%s: %v wraps neither ErrInvalidQuery nor ErrUnknownMetric", c.name, err)
		}
		if !strings.Contains(err.Error(), c.param) {
			t.Errorf("%s: message %q does not name %s", c.name, err, c.param)
		}
	}
}

func TestQueryBoundsSeries(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	s, _ := analytics.New(analytics.NewMemory(), &analytics.Config{MaxSeries: 3})
	for i := range 5 {
		if err := s.Write(ctx, analytics.Point{Metric: analytics.MetricRunTime, Labels: analytics.Labels{User: string(rune('a' + i))}, Time: t0, Value: 1}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Query(ctx, analytics.Query{Metric: analytics.MetricRunTime, From: t0, To: t0.Add(time.Hour), GroupBy: []string{analytics.ByUser}})
	var qe *analytics.QueryError
	if !errors.As(err, &qe) || qe.Param != "group_by" {
		t.Fatalf("5 groups over a bound of 3: err = %v, want a group_by QueryError", err)
	}
	r, err := s.Query(ctx, analytics.Query{Metric: analytics.MetricRunTime, From: t0, To: t0.Add(time.Hour)})
	if err != nil || len(r.Series) != 1 || r.StepSeconds != 10 {
		t.Fatalf("ungrouped with an automatic step: %+v, %v; want one series, step 10 s", r, err)
	}
}

// TestPercentileFallsBackToRollups: past the raw retention a percentile
// is computed from rollup means and says so.
func TestPercentileFallsBackToRollups(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(10 * 24 * time.Hour)
	s, _ := analytics.New(analytics.NewMemory(), &analytics.Config{Now: func() time.Time { return now }})
	if err := s.Write(ctx, analytics.Point{Metric: analytics.MetricRunTime, Time: t0, Value: 3}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Query(ctx, analytics.Query{Metric: analytics.MetricRunTime, From: t0, To: t0.Add(24 * time.Hour), Step: time.Hour, Agg: analytics.AggP95})
	if err != nil || !r.Approximate || r.Resolution != "1h" || *r.Series[0].Values[0] != 3 {
		t.Fatalf("p95 past raw retention = %+v, %v; want approximate from 1h = 3", r, err)
	}
}
