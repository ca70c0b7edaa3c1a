package analytics_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/analytics"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/internal/pgtest"
)

// testAlertRestart raises an alert on rule "queue", acknowledges it,
// raises and silences one on rule "gpu", then closes the engine and opens
// a new one on a store from reopen (the same saved state): the "queue"
// alert is still open and acknowledged, no second alert.raised comes while
// the breach goes on, the "gpu" silence still mutes a new breach, and the
// end of the "queue" breach emits alert.resolved once.
func testAlertRestart(t *testing.T, reopen func(now func() time.Time) *analytics.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	var published []events.Event
	rules := []analytics.Rule{
		{Name: "queue", Kind: analytics.KindThreshold, Metric: analytics.MetricQueueDepth, Agg: analytics.AggMax, Window: 10 * time.Minute, Threshold: 50, Clear: 30, For: time.Minute},
		{Name: "gpu", Kind: analytics.KindThreshold, Metric: analytics.MetricGPUUtilization, Agg: analytics.AggMin, Window: 10 * time.Minute, Below: true, Threshold: 0.5, Clear: 0.7},
	}
	open := func() (*analytics.Store, *analytics.AlertEngine) {
		s := reopen(clock)
		e, err := analytics.NewAlertEngine(ctx, s, rules, &analytics.AlertConfig{Now: clock,
			Publish: func(ctx context.Context, e events.Event) error { published = append(published, e); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		return s, e
	}
	count := func(typ events.Type, rule string) int {
		n := 0
		for _, e := range published {
			if e.Type == typ && containsRule(e.Data, rule) {
				n++
			}
		}
		return n
	}
	step := func(s *analytics.Store, e *analytics.AlertEngine, minute int, depth, gpu float64) {
		t.Helper()
		now = t0.Add(time.Duration(minute)*time.Minute + 30*time.Second)
		if err := s.Write(ctx,
			analytics.Point{Metric: analytics.MetricQueueDepth, Time: now, Value: depth},
			analytics.Point{Metric: analytics.MetricGPUUtilization, Time: now, Value: gpu}); err != nil {
			t.Fatal(err)
		}
		if err := e.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s, eng := open()
	step(s, eng, 0, 10, 0.9)
	step(s, eng, 1, 60, 0.9)
	step(s, eng, 2, 60, 0.2) // queue fires (for 1 min), gpu fires at once
	openAlerts := eng.Alerts(true)
	if len(openAlerts) != 2 || count(analytics.TypeAlertRaised, "queue") != 1 || count(analytics.TypeAlertRaised, "gpu") != 1 {
		t.Fatalf("before restart: open %+v, published %d", openAlerts, len(published))
	}
	byRule := map[string]analytics.Alert{}
	for _, a := range openAlerts {
		byRule[a.Rule] = a
	}
	if _, err := eng.Acknowledge(ctx, byRule["queue"].ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Silence(ctx, byRule["gpu"].ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	step(s, eng, 3, 60, 0.9) // gpu resolves (silence stays on the rule)
	if count(analytics.TypeAlertResolved, "gpu") != 1 {
		t.Fatalf("gpu did not resolve: %d events", len(published))
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if err := eng.Evaluate(ctx); err == nil {
		t.Fatal("a closed engine evaluated")
	}

	s, eng = open()
	got := eng.Alerts(true)
	if len(got) != 1 || got[0].ID != byRule["queue"].ID || !got[0].Acknowledged || got[0].AckedBy != "admin" || got[0].AckedAt == nil {
		t.Fatalf("after restart open alerts = %+v, want the acknowledged queue alert", got)
	}
	if all := eng.Alerts(false); len(all) != 2 {
		t.Fatalf("after restart %d alerts listed, want 2", len(all))
	}
	step(s, eng, 4, 70, 0.1) // queue still breached, gpu breached but silenced
	step(s, eng, 5, 70, 0.1)
	if n, g := count(analytics.TypeAlertRaised, "queue"), count(analytics.TypeAlertRaised, "gpu"); n != 1 || g != 1 {
		t.Fatalf("after restart alert.raised queue %d, gpu %d times; want 1 and 1 (open alert kept, silence kept)", n, g)
	}
	if o := eng.Alerts(true); len(o) != 1 || o[0].Rule != "queue" {
		t.Fatalf("after restart open = %+v, want only queue", o)
	}
	step(s, eng, 6, 10, 0.9) // queue resolves
	step(s, eng, 7, 10, 0.9)
	if n := count(analytics.TypeAlertResolved, "queue"); n != 1 {
		t.Fatalf("alert.resolved for queue emitted %d times, want 1", n)
	}
	all := eng.Alerts(false)
	for _, a := range all {
		if a.State != "resolved" || a.Rule == "queue" && !a.Acknowledged {
			t.Fatalf("final alerts %+v", all)
		}
	}
	eng.Close()

	// A third engine sees the resolution and does not resolve again.
	s, eng = open()
	if o := eng.Alerts(true); len(o) != 0 {
		t.Fatalf("third engine: open %+v", o)
	}
	step(s, eng, 8, 10, 0.9)
	if len(published) != 4 {
		t.Fatalf("published %d events in all, want 4", len(published))
	}
}

func containsRule(data []byte, rule string) bool {
	var d struct {
		Rule string `json:"rule"`
	}
	return json.Unmarshal(data, &d) == nil && d.Rule == rule
}

func TestAlertRestartMemory(t *testing.T) {
	d := analytics.NewMemory() // the store is not closed: the driver outlives the engine
	testAlertRestart(t, func(now func() time.Time) *analytics.Store {
		s, err := analytics.New(d, &analytics.Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func sqlReopen(t *testing.T, db *sql.DB, dialect string) func(func() time.Time) *analytics.Store {
	return func(now func() time.Time) *analytics.Store {
		d, err := analytics.NewSQL(context.Background(), db, &analytics.SQLConfig{Dialect: dialect})
		if err != nil {
			t.Fatal(err)
		}
		s, err := analytics.New(d, &analytics.Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestAlertRestartSQLite(t *testing.T) {
	testAlertRestart(t, sqlReopen(t, openSQLite(t), analytics.SQLite))
}

func TestAlertRestartPostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t, "analytics_alerts")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	testAlertRestart(t, sqlReopen(t, db, analytics.Postgres))
}
