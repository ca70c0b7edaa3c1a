package analytics_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/analytics"
	"github.com/cosmic-horizons/horizons/events"
)

func TestAlertLifecycle(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now := t0
	s, _ := analytics.New(analytics.NewMemory(), &analytics.Config{Now: func() time.Time { return now }})
	cat := &events.Catalogue{}
	analytics.RegisterAlertEvents(cat)
	var published, notified []events.Event
	eng, err := analytics.NewAlertEngine(ctx, s, []analytics.Rule{{
		Name: "queue-surge", Kind: analytics.KindThreshold, Metric: analytics.MetricQueueDepth, Agg: analytics.AggMax,
		Step: time.Minute, Window: 10 * time.Minute, Threshold: 50, Clear: 30, For: 2 * time.Minute,
	}}, &analytics.AlertConfig{
		Now: func() time.Time { return now },
		Publish: func(ctx context.Context, e events.Event) error {
			if err := cat.Validate(e); err != nil {
				return err
			}
			published = append(published, e)
			return nil
		},
		Notify: func(ctx context.Context, e events.Event) error { notified = append(notified, e); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	// depth by minute: quiet, then 60 for 4 min, 40 (inside the
	// hysteresis band: stays firing), then 20 (resolves).
	depth := []float64{10, 10, 60, 60, 60, 60, 40, 40, 20, 20}
	var states []int
	for i, d := range depth {
		now = t0.Add(time.Duration(i)*time.Minute + 30*time.Second)
		if err := s.Write(ctx, analytics.Point{Metric: analytics.MetricQueueDepth, Time: now, Value: d}); err != nil {
			t.Fatal(err)
		}
		if err := eng.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
		states = append(states, len(eng.Alerts(true)))
	}
	want := []int{0, 0, 0, 0, 1, 1, 1, 1, 0, 0}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("open alerts per minute = %v, want %v (for 2 min, hysteresis 50/30)", states, want)
		}
	}
	if len(published) != 2 || published[0].Type != analytics.TypeAlertRaised || published[1].Type != analytics.TypeAlertResolved || len(notified) != 2 {
		t.Fatalf("published %d, notified %d events; want raised then resolved", len(published), len(notified))
	}
	var data struct {
		Value    float64            `json:"value"`
		Evidence analytics.Evidence `json:"evidence"`
	}
	if err := json.Unmarshal(published[0].Data, &data); err != nil || data.Value != 60 || len(data.Evidence.Values) == 0 {
		t.Fatalf("raised payload %s: %v", published[0].Data, err)
	}
	all := eng.Alerts(false)
	if len(all) != 1 || all[0].State != "resolved" {
		t.Fatalf("alerts = %+v", all)
	}
	a, err := eng.Acknowledge(ctx, all[0].ID, "admin")
	if err != nil || !a.Acknowledged || a.AckedBy != "admin" {
		t.Fatalf("Acknowledge = %+v, %v", a, err)
	}
	if _, err := eng.Acknowledge(ctx, "nope", "admin"); !errors.Is(err, analytics.ErrAlertNotFound) {
		t.Fatalf("Acknowledge(nope) = %v", err)
	}
	// Silenced: a new surge raises nothing until the silence ends.
	if _, err := eng.Silence(ctx, all[0].ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 16; i++ {
		now = t0.Add(time.Duration(i)*time.Minute + 30*time.Second)
		s.Write(ctx, analytics.Point{Metric: analytics.MetricQueueDepth, Time: now, Value: 90})
		if err := eng.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(eng.Alerts(true)) != 0 || len(published) != 2 {
		t.Fatalf("a silenced rule raised: %d open, %d published", len(eng.Alerts(true)), len(published))
	}
	now = t0.Add(61*time.Minute + 30*time.Second)
	s.Write(ctx, analytics.Point{Metric: analytics.MetricQueueDepth, Time: now, Value: 90})
	eng.Evaluate(ctx)
	if len(eng.Alerts(true)) != 1 {
		t.Fatalf("after the silence: %d open alerts, want 1", len(eng.Alerts(true)))
	}
}

func TestAlertRulesAreChecked(t *testing.T) {
	ctx := context.Background()
	s, _ := analytics.New(analytics.NewMemory(), nil)
	for _, r := range []analytics.Rule{
		{Kind: analytics.KindThreshold, Metric: analytics.MetricQueueDepth},
		{Name: "x", Kind: "magic", Metric: analytics.MetricQueueDepth},
		{Name: "x", Kind: analytics.KindRate, Metric: "nope"},
		{Name: "x", Kind: analytics.KindThreshold, Metric: analytics.MetricQueueDepth, Threshold: 10, Clear: 20},
		{Name: "x", Kind: analytics.KindThreshold, Metric: analytics.MetricQueueDepth, Step: time.Millisecond},
	} {
		if _, err := analytics.NewAlertEngine(ctx, s, []analytics.Rule{r}, nil); err == nil {
			t.Errorf("rule %+v accepted", r)
		}
	}
}

// TestAnomalyRuleFiresOnDrop: an anomaly rule on GPU utilisation fires on
// a sudden drop and resolves when it recovers.
func TestAnomalyRuleFiresOnDrop(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now := t0
	s, _ := analytics.New(analytics.NewMemory(), &analytics.Config{Now: func() time.Time { return now }})
	eng, err := analytics.NewAlertEngine(ctx, s, []analytics.Rule{{Name: "gpu-drop", Kind: analytics.KindAnomaly, Metric: analytics.MetricGPUUtilization,
		Filter: analytics.Labels{Backend: "sim"}, Window: 2 * time.Hour, Threshold: 6, Clear: 6, Detector: analytics.DetectorConfig{Direction: analytics.Down}}},
		&analytics.AlertConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var fired, resolved bool
	for i := range 100 {
		now = t0.Add(time.Duration(i)*time.Minute + 30*time.Second)
		v := 0.8 + 0.01*float64(i%5)
		if i >= 80 && i < 83 {
			v = 0.2
		}
		s.Write(ctx, analytics.Point{Metric: analytics.MetricGPUUtilization, Labels: analytics.Labels{Backend: "sim"}, Time: now, Value: v})
		if err := eng.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
		open := len(eng.Alerts(true))
		if open > 0 && i < 80 {
			t.Fatalf("fired at minute %d before the drop", i)
		}
		fired = fired || open > 0
		resolved = resolved || fired && open == 0
	}
	if !fired || !resolved {
		t.Fatalf("fired %v resolved %v; want both", fired, resolved)
	}
}
