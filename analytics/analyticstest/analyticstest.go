// Package analyticstest is the conformance suite every analytics.Driver
// passes: writes, rollups across writes, aligned queries at every
// resolution, label filters and grouping, retention and rejected input.
package analyticstest

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/analytics"
)

// T0 is the start of the suite's data: a whole day in UTC.
var T0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// RunDriver runs the suite; open returns a fresh, empty driver.
func RunDriver(t *testing.T, open func(t *testing.T) analytics.Driver) {
	ctx := context.Background()
	store := func(t *testing.T, now time.Time) *analytics.Store {
		d := open(t)
		s, err := analytics.New(d, &analytics.Config{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	// Two agents, one value per 10 s for 2 h: agent a gets i%10, agent b
	// gets 100 + i%10, written in three calls (one out of order) so
	// rollups must merge across writes.
	fill := func(t *testing.T, s *analytics.Store) {
		var pts []analytics.Point
		for i := range 720 {
			ts := T0.Add(time.Duration(i) * 10 * time.Second)
			pts = append(pts,
				analytics.Point{Metric: analytics.MetricRunTime, Labels: analytics.Labels{Agent: "a", Backend: "gpu1", User: "u1"}, Time: ts, Value: float64(i % 10)},
				analytics.Point{Metric: analytics.MetricRunTime, Labels: analytics.Labels{Agent: "b", Backend: "gpu2", User: "u2"}, Time: ts, Value: 100 + float64(i%10)})
		}
		for _, part := range [][]analytics.Point{pts[700:], pts[:300], pts[300:700]} {
			if err := s.Write(ctx, part...); err != nil {
				t.Fatal(err)
			}
		}
	}
	query := func(t *testing.T, s *analytics.Store, q analytics.Query) *analytics.Result {
		t.Helper()
		r, err := s.Query(ctx, q)
		if err != nil {
			t.Fatalf("Query(%+v): %v", q, err)
		}
		return r
	}
	val := func(t *testing.T, r *analytics.Result, series, i int) float64 {
		t.Helper()
		if series >= len(r.Series) {
			t.Fatalf("result has %d series, want index %d", len(r.Series), series)
		}
		v := r.Series[series].Values[i]
		if v == nil {
			t.Fatalf("series %d value %d is null", series, i)
		}
		return *v
	}

	t.Run("AggregatesAtEachResolution", func(t *testing.T) {
		s := store(t, T0.Add(3*time.Hour))
		fill(t, s)
		for _, c := range []struct {
			step time.Duration
			res  string
			n    int
		}{{30 * time.Second, "raw", 240}, {10 * time.Minute, "1m", 12}, {time.Hour, "1h", 2}} {
			r := query(t, s, analytics.Query{Metric: analytics.MetricRunTime, From: T0, To: T0.Add(2 * time.Hour), Step: c.step, Agg: analytics.AggAvg, GroupBy: []string{analytics.ByAgent}})
			if r.Resolution != c.res || len(r.Times) != c.n || len(r.Series) != 2 {
				t.Fatalf("step %v: resolution %s, %d times, %d series; want %s, %d, 2", c.step, r.Resolution, len(r.Times), len(r.Series), c.res, c.n)
			}
			if r.Series[0].Labels.Agent != "a" || r.Series[1].Labels.Agent != "b" {
				t.Fatalf("step %v: series labels %+v, %+v", c.step, r.Series[0].Labels, r.Series[1].Labels)
			}
			if c.step >= 10*time.Minute {
				// Every 10 min window holds whole cycles 0..9: mean 4.5.
				for i := range r.Times {
					if a, b := val(t, r, 0, i), val(t, r, 1, i); math.Abs(a-4.5) > 1e-9 || math.Abs(b-104.5) > 1e-9 {
						t.Fatalf("step %v point %d: avg %v, %v; want 4.5, 104.5", c.step, i, a, b)
					}
				}
			}
			cnt := query(t, s, analytics.Query{Metric: analytics.MetricRunTime, From: T0, To: T0.Add(2 * time.Hour), Step: c.step, Agg: analytics.AggCount})
			var total float64
			for i := range cnt.Times {
				total += val(t, cnt, 0, i)
			}
			if total != 1440 {
				t.Fatalf("step %v: count sums to %v, want 1440", c.step, total)
			}
			mx := query(t, s, analytics.Query{Metric: analytics.MetricRunTime, Filter: analytics.Labels{Backend: "gpu1"}, From: T0, To: T0.Add(2 * time.Hour), Step: c.step, Agg: analytics.AggMax})
			if len(mx.Series) != 1 || val(t, mx, 0, 0) != 9 && c.step >= 10*time.Minute {
				t.Fatalf("step %v: max filtered to gpu1 = %+v", c.step, mx.Series)
			}
		}
	})

	t.Run("Percentiles", func(t *testing.T) {
		s := store(t, T0.Add(3*time.Hour))
		fill(t, s)
		r := query(t, s, analytics.Query{Metric: analytics.MetricRunTime, Filter: analytics.Labels{Agent: "a"}, From: T0, To: T0.Add(time.Hour), Step: time.Hour, Agg: analytics.AggP50})
		if r.Resolution != "raw" || r.Approximate {
			t.Fatalf("p50 read %s (approximate %v), want raw", r.Resolution, r.Approximate)
		}
		if v := val(t, r, 0, 0); v != 4.5 {
			t.Fatalf("p50 = %v, want 4.5", v)
		}
		r = query(t, s, analytics.Query{Metric: analytics.MetricRunTime, Filter: analytics.Labels{Agent: "b"}, From: T0, To: T0.Add(time.Hour), Step: time.Hour, Agg: analytics.AggP95})
		if v := val(t, r, 0, 0); math.Abs(v-109) > 1e-9 {
			t.Fatalf("p95 = %v, want 109", v)
		}
	})

	t.Run("EmptyStepsAreNull", func(t *testing.T) {
		s := store(t, T0.Add(3*time.Hour))
		if err := s.Write(ctx, analytics.Point{Metric: analytics.MetricQueueWait, Time: T0.Add(90 * time.Second), Value: 7}); err != nil {
			t.Fatal(err)
		}
		r := query(t, s, analytics.Query{Metric: analytics.MetricQueueWait, From: T0, To: T0.Add(5 * time.Minute), Step: time.Minute})
		if len(r.Series) != 1 || len(r.Series[0].Values) != 5 {
			t.Fatalf("got %+v", r.Series)
		}
		for i, v := range r.Series[0].Values {
			if (i == 1) != (v != nil) || v != nil && *v != 7 {
				t.Fatalf("value %d = %v; want only index 1 set to 7", i, v)
			}
		}
	})

	t.Run("Retention", func(t *testing.T) {
		now := T0.Add(2 * time.Hour)
		d := open(t)
		s, err := analytics.New(d, &analytics.Config{Now: func() time.Time { return now }, RawRetention: 30 * time.Minute, MinuteRetention: 90 * time.Minute, HourRetention: 10 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		fill(t, s)
		if _, err := s.Retain(ctx); err != nil {
			t.Fatal(err)
		}
		count := func(res analytics.Resolution) int {
			n := 0
			if err := d.Scan(ctx, res, analytics.Selector{Metric: analytics.MetricRunTime}, T0.Add(-time.Hour), T0.Add(5*time.Hour), func(analytics.Bucket) bool { n++; return true }); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// raw: 30 min of 10 s points, two series; minute: 90 one-minute
		// buckets, two series; hour: both hours kept.
		if got := count(analytics.Raw); got != 2*180 {
			t.Errorf("raw after retention: %d points, want %d", got, 2*180)
		}
		if got := count(analytics.Minute); got != 2*90 {
			t.Errorf("minute after retention: %d buckets, want %d", got, 2*90)
		}
		if got := count(analytics.Hour); got != 2*2 {
			t.Errorf("hour after retention: %d buckets, want 4", got)
		}
	})

	t.Run("RejectsBadPointsAtomically", func(t *testing.T) {
		s := store(t, T0.Add(time.Hour))
		good := analytics.Point{Metric: analytics.MetricRunTime, Time: T0, Value: 1}
		for _, bad := range []analytics.Point{
			{Metric: "no_such_metric", Time: T0, Value: 1},
			{Metric: analytics.MetricRunTime, Value: 1},
			{Metric: analytics.MetricRunTime, Time: T0, Value: math.NaN()},
		} {
			err := s.Write(ctx, good, bad)
			if !errors.Is(err, analytics.ErrUnknownMetric) && !errors.Is(err, analytics.ErrInvalidPoint) {
				t.Errorf("Write(%+v) = %v, want ErrUnknownMetric or ErrInvalidPoint", bad, err)
			}
		}
		r := query(t, s, analytics.Query{Metric: analytics.MetricRunTime, From: T0, To: T0.Add(time.Minute), Step: time.Minute, Agg: analytics.AggCount})
		if len(r.Series) != 0 {
			t.Fatalf("a rejected batch left samples: %+v", r.Series)
		}
	})

	t.Run("ScanStops", func(t *testing.T) {
		d := open(t)
		s, _ := analytics.New(d, nil)
		defer s.Close()
		fill(t, s)
		n := 0
		if err := d.Scan(ctx, analytics.Raw, analytics.Selector{Metric: analytics.MetricRunTime}, T0, T0.Add(time.Hour), func(analytics.Bucket) bool { n++; return n < 5 }); err != nil {
			t.Fatal(err)
		}
		if n != 5 {
			t.Fatalf("scan called fn %d times after it returned false at 5", n)
		}
	})
}
