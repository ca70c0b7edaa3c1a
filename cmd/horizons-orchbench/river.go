package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

var errNoRiver = errors.New("river unavailable")

// noopArgs is River's trivial job.
type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "horizons_bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *atomic.Int64
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	w.done.Add(1)
	return nil
}

// riverRun inserts o.pgN trivial jobs into River on a fresh schema of the
// same database and works them, timing insert plus work until River has
// recorded every job completed.
func riverRun(ctx context.Context, o options) (result, error) {
	dsn, name, drop, err := schema(ctx, o.pg, "riverbench")
	if err != nil {
		return result{}, err
	}
	defer drop()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return result{}, fmt.Errorf("%w: pool on %s: %v", errNoRiver, redact(o.pg), err)
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	mig, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: name, Logger: quiet()})
	if err != nil {
		return result{}, err
	}
	if _, err := mig.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return result{}, fmt.Errorf("river migrate: %w", err)
	}
	var worked atomic.Int64
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{done: &worked})
	client, err := river.NewClient(driver, &river.Config{
		Schema:  name,
		Logger:  quiet(),
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.riverWorkers}},
		Workers: workers,
	})
	if err != nil {
		return result{}, err
	}
	if err := client.Start(ctx); err != nil {
		return result{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client.Stop(sctx)
	}()
	start := time.Now()
	const batch = 1000
	for i := 0; i < o.pgN; i += batch {
		params := make([]river.InsertManyParams, 0, batch)
		for k := i; k < min(i+batch, o.pgN); k++ {
			params = append(params, river.InsertManyParams{Args: noopArgs{N: k}})
		}
		if _, err := client.InsertManyFast(ctx, params); err != nil {
			return result{}, fmt.Errorf("river insert: %w", err)
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+name+".river_job WHERE state = 'completed'").Scan(&n); err != nil {
			return result{}, err
		}
		if n >= o.pgN {
			break
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("river completed %d of %d jobs in 10 minutes", n, o.pgN)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return result{name: "river (same postgres)", jobs: o.pgN, elapsed: time.Since(start), note: fmt.Sprintf("insert+work of no-op jobs, %d workers", o.riverWorkers)}, nil
}
