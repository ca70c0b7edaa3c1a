// Command horizons-analyticsbench loads -points raw run times spread over
// 30 days (4 agents) into the analytics store on each driver (memory, and
// SQLite in a temporary directory) and prints, side by side, the time of a
// 30-day query through the Store (which reads the hour rollups for avg and
// max, and the raw points for exact p95) next to a baseline that scans
// every raw point and aggregates them in Go (what a store without rollups
// does), with the ratio. Times are the median of -runs runs.
//
//	go run ./cmd/horizons-analyticsbench
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	_ "modernc.org/sqlite"

	"github.com/cosmic-horizons/horizons/analytics"
)

func main() {
	points := flag.Int("points", 1_000_000, "raw points loaded")
	runs := flag.Int("runs", 3, "runs of each query (the median is printed)")
	flag.Parse()
	if err := run(*points, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "horizons-analyticsbench:", err)
		os.Exit(1)
	}
}

func run(points, runs int) error {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	span := 30 * 24 * time.Hour
	dir, err := os.MkdirTemp("", "analyticsbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "a.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	sqlDriver, err := analytics.NewSQL(ctx, db, nil)
	if err != nil {
		return err
	}
	fmt.Printf("30-day queries over %d raw points, step 1h, grouped by agent (median of %d runs)\n", points, runs)
	fmt.Printf("  %-7s %-5s %-11s %12s %14s %8s\n", "driver", "agg", "read", "store", "raw baseline", "ratio")
	for _, d := range []struct {
		name string
		drv  analytics.Driver
	}{{"memory", analytics.NewMemory()}, {"sqlite", sqlDriver}} {
		now := t0.Add(span + 24*time.Hour)
		s, err := analytics.New(d.drv, &analytics.Config{Now: func() time.Time { return now }, RawRetention: 40 * 24 * time.Hour})
		if err != nil {
			return err
		}
		start := time.Now()
		rng := rand.New(rand.NewPCG(1, 2))
		agents := []string{"alphacal", "imaging", "anomaly", "pipeline"}
		batch := make([]analytics.Point, 0, 10000)
		for i := range points {
			batch = append(batch, analytics.Point{Metric: analytics.MetricRunTime, Labels: analytics.Labels{Agent: agents[i%4]},
				Time: t0.Add(time.Duration(int64(span) / int64(points) * int64(i))), Value: 60 + 20*rng.NormFloat64()})
			if len(batch) == cap(batch) || i == points-1 {
				if err := s.Write(ctx, batch...); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		fmt.Printf("  %-7s load %v (%.0f points/s)\n", d.name, time.Since(start).Round(time.Millisecond), float64(points)/time.Since(start).Seconds())
		for _, agg := range []analytics.Agg{analytics.AggAvg, analytics.AggMax, analytics.AggP95} {
			q := analytics.Query{Metric: analytics.MetricRunTime, From: t0, To: t0.Add(span), Step: time.Hour, Agg: agg, GroupBy: []string{analytics.ByAgent}}
			var res *analytics.Result
			st := median(runs, func() error { var err error; res, err = s.Query(ctx, q); return err })
			base := median(runs, func() error { return baseline(ctx, d.drv, q) })
			if st < 0 || base < 0 {
				return fmt.Errorf("%s %s: query failed", d.name, agg)
			}
			fmt.Printf("  %-7s %-5s %-11s %12v %14v %7.1fx\n", d.name, agg, res.Resolution+" samples", st.Round(time.Microsecond), base.Round(time.Microsecond), float64(base)/float64(st))
		}
	}
	return nil
}

// baseline scans every raw point of the range, groups the values per agent
// and hour in Go and aggregates each group.
func baseline(ctx context.Context, d analytics.Driver, q analytics.Query) error {
	vals := map[string][][]float64{}
	n := int(q.To.Sub(q.From) / q.Step)
	err := d.Scan(ctx, analytics.Raw, analytics.Selector{Metric: q.Metric}, q.From, q.To, func(b analytics.Bucket) bool {
		v := vals[b.Labels.Agent]
		if v == nil {
			v = make([][]float64, n)
			vals[b.Labels.Agent] = v
		}
		i := int(b.Start.Sub(q.From) / q.Step)
		v[i] = append(v[i], b.Sum)
		return true
	})
	var sink float64
	for _, steps := range vals {
		for _, xs := range steps {
			if len(xs) == 0 {
				continue
			}
			switch q.Agg {
			case analytics.AggP95:
				sink += analytics.Quantile(xs, 0.95)
			case analytics.AggMax:
				sink += slices.Max(xs)
			default:
				var sum float64
				for _, x := range xs {
					sum += x
				}
				sink += sum / float64(len(xs))
			}
		}
	}
	if sink == 0 && len(vals) > 0 {
		return fmt.Errorf("baseline aggregated nothing")
	}
	return err
}

func median(runs int, f func() error) time.Duration {
	var ds []time.Duration
	for range runs {
		start := time.Now()
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return -1
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}
