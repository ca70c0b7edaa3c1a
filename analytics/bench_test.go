package analytics_test

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/analytics"
)

// benchPoints is the raw data of BenchmarkQuery30Days: a million run
// times over 30 days (one per 2.6 s) across 4 agents and 2 backends.
const benchPoints = 1_000_000

var benchT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	benchMu     sync.Mutex
	benchStores = map[string]*analytics.Store{}
)

// benchStore loads the data set once per driver and process.
func benchStore(b *testing.B, name string) *analytics.Store {
	benchMu.Lock()
	defer benchMu.Unlock()
	if s := benchStores[name]; s != nil {
		return s
	}
	ctx := context.Background()
	var d analytics.Driver
	switch name {
	case "memory":
		d = analytics.NewMemory()
	case "sqlite":
		dir, err := os.MkdirTemp("", "analytics-bench")
		if err != nil {
			b.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "a.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		if d, err = analytics.NewSQL(ctx, db, nil); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close(); os.RemoveAll(dir) })
	}
	now := benchT0.Add(31 * 24 * time.Hour)
	s, err := analytics.New(d, &analytics.Config{Now: func() time.Time { return now }, RawRetention: 40 * 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	agents := []string{"alphacal", "imaging", "anomaly", "pipeline"}
	span := 30 * 24 * time.Hour
	batch := make([]analytics.Point, 0, 10000)
	for i := range benchPoints {
		batch = append(batch, analytics.Point{
			Metric: analytics.MetricRunTime,
			Labels: analytics.Labels{Agent: agents[i%4], Backend: []string{"simgpu", "slurm"}[i%2], User: "u"},
			Time:   benchT0.Add(time.Duration(int64(span) / benchPoints * int64(i))),
			Value:  60 + 20*rng.NormFloat64(),
		})
		if len(batch) == cap(batch) {
			if err := s.Write(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	benchStores[name] = s
	return s
}

// BenchmarkQuery30Days answers 30-day queries over the million raw points:
// avg and max per hour grouped by agent read the hour rollups; p95 per
// hour reads every raw point (exact percentiles).
func BenchmarkQuery30Days(b *testing.B) {
	top := b
	for _, name := range []string{"memory", "sqlite"} {
		for _, c := range []struct {
			name string
			agg  analytics.Agg
		}{{"avg-1h-by-agent", analytics.AggAvg}, {"max-1h-by-agent", analytics.AggMax}, {"p95-1h-by-agent-raw", analytics.AggP95}} {
			b.Run(name+"/"+c.name, func(b *testing.B) {
				s := benchStore(top, name)
				q := analytics.Query{Metric: analytics.MetricRunTime, From: benchT0, To: benchT0.Add(30 * 24 * time.Hour), Step: time.Hour, Agg: c.agg, GroupBy: []string{analytics.ByAgent}}
				b.ResetTimer()
				var r *analytics.Result
				for b.Loop() {
					var err error
					if r, err = s.Query(context.Background(), q); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(r.Scanned), "samples/op")
				if len(r.Series) != 4 || len(r.Times) != 720 {
					b.Fatalf("%d series of %d points, want 4 of 720", len(r.Series), len(r.Times))
				}
			})
		}
	}
}
