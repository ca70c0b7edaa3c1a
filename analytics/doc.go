// Package analytics is the performance analytics of Cosmic Horizons: a
// time-series store of job and platform metrics, aligned history queries,
// robust anomaly detection on the series and alert rules.
//
// A [Store] sits on a small [Driver]: [NewMemory] (in memory, the default for
// tests and examples) or [NewSQL] on a database/sql handle (SQLite, the
// embedded default, or PostgreSQL; its own forward-only migrations table).
// Every write keeps minute and hour rollups (count, sum, min, max) beside
// the raw points, so a query over a long range reads the rollups; each
// resolution has its own retention, applied by [Store.Retain]. Queries
// ([Store.Query]) return one aligned series per group (agent, backend,
// user) with avg, p50, p95, max, min, sum or count per step, and are
// bounded: an unknown metric, an inverted or oversized range, or a step
// too fine for the range is a [*QueryError] naming the parameter.
//
// The [Collector] is an event consumer (add [Collector.Handle] to an
// events router in its own consumer group) that turns job lifecycle events
// into series: queue wait, run time, turnaround, failures, event counts and
// queue depth. A [Sampler] records gauges (GPU utilisation and memory per
// backend, consumer lag, dead letters) from probes at an interval.
//
// The package imports events and no transport, database or backend driver;
// the package analyticstest holds the conformance suite every Driver runs.
package analytics
