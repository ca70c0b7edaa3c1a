// Package sqlstore is the orchestrator.Store on database/sql: SQLite through
// the pure-Go modernc.org/sqlite driver (the embedded default, nothing to
// install) and PostgreSQL through any database/sql driver registered as
// "pgx" or "postgres".
//
// # Schema
//
// Open creates and migrates the schema itself. Migrations are numbered and
// forward-only; each runs in its own transaction together with the row that
// records it in horizons_migrations, so a crash mid-migration leaves the
// previous version intact. On PostgreSQL a transaction-scoped advisory lock
// serialises concurrent migrators; on SQLite the immediate write lock does.
//
// # Transactions and the outbox
//
// CreateJob and UpdateJob write the job row, its events (job_events) and the
// same events into the outbox table in one transaction. The orchestrator's
// forwarder reads the outbox in id order and marks records published once
// the bus accepted them.
//
// # Several replicas
//
// Orchestrators sharing one PostgreSQL database coordinate through the
// jobs table: ClaimReady reserves ready jobs with FOR UPDATE SKIP LOCKED, so
// replicas never wait for or collide on the same rows; placed jobs carry a
// lease (lease_holder, lease_expires) that RenewLeases extends and that other
// replicas take over, with a version-checked UpdateJob, once it expires.
// Migrations take a transaction-scoped advisory lock keyed by the schema,
// so any number of processes may open the same database at once.
//
// Times are stored as UTC Unix nanoseconds, so ordering and cursors are exact
// on every database.
package sqlstore
