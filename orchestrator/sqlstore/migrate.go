package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

type migration struct {
	version int
	name    string
	sqlite  []string
	pg      []string
}

var jobsTable = `CREATE TABLE jobs (
	id TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	agent TEXT NOT NULL,
	dataset_id TEXT NOT NULL,
	gpus INTEGER NOT NULL,
	memory_mb INTEGER NOT NULL,
	wall_time_ns BIGINT NOT NULL,
	params TEXT NOT NULL,
	priority INTEGER NOT NULL,
	idempotency_key TEXT NOT NULL,
	correlation_id TEXT NOT NULL,
	workflow_id TEXT NOT NULL,
	depends_on TEXT NOT NULL,
	state TEXT NOT NULL,
	progress DOUBLE PRECISION NOT NULL,
	backend TEXT NOT NULL,
	external_id TEXT NOT NULL,
	handle_data TEXT NOT NULL,
	result TEXT NOT NULL,
	error TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt_at BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	started_at BIGINT NOT NULL,
	finished_at BIGINT NOT NULL,
	version BIGINT NOT NULL,
	sequence BIGINT NOT NULL
)`

var common = []string{
	jobsTable,
	`CREATE UNIQUE INDEX jobs_owner_idem ON jobs (owner, idempotency_key) WHERE idempotency_key <> ''`,
	`CREATE INDEX jobs_state_created ON jobs (state, created_at)`,
	`CREATE INDEX jobs_owner_created ON jobs (owner, created_at)`,
	`CREATE INDEX jobs_created ON jobs (created_at, id)`,
	`CREATE TABLE job_events (
		event_id TEXT PRIMARY KEY,
		job_id TEXT NOT NULL REFERENCES jobs (id),
		sequence BIGINT NOT NULL,
		type TEXT NOT NULL,
		time_ns BIGINT NOT NULL,
		body TEXT NOT NULL,
		UNIQUE (job_id, sequence)
	)`,
}

// migrations are forward-only; never edit one that has shipped, add a new
// one instead.
var migrations = []migration{
	{
		version: 1,
		name:    "jobs, job_events, outbox",
		sqlite: append(append([]string{}, common...),
			`CREATE TABLE outbox (
				id INTEGER PRIMARY KEY AUTOINCREMENT,
				topic TEXT NOT NULL,
				event_id TEXT NOT NULL UNIQUE,
				body TEXT NOT NULL,
				created_ns BIGINT NOT NULL,
				published_ns BIGINT
			)`,
			`CREATE INDEX outbox_pending ON outbox (id) WHERE published_ns IS NULL`),
		pg: append(append([]string{}, common...),
			`CREATE TABLE outbox (
				id BIGSERIAL PRIMARY KEY,
				topic TEXT NOT NULL,
				event_id TEXT NOT NULL UNIQUE,
				body TEXT NOT NULL,
				created_ns BIGINT NOT NULL,
				published_ns BIGINT
			)`,
			`CREATE INDEX outbox_pending ON outbox (id) WHERE published_ns IS NULL`),
	},
}

func init() {
	// Version 2: leases for several replicas and the provenance record.
	v2 := []string{
		`ALTER TABLE jobs ADD COLUMN lease_holder TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE jobs ADD COLUMN lease_expires BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE jobs ADD COLUMN submitted_spec TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE jobs ADD COLUMN agent_version TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE jobs ADD COLUMN attempt_log TEXT NOT NULL DEFAULT ''`,
		`CREATE INDEX jobs_lease_holder ON jobs (lease_holder) WHERE lease_holder <> ''`,
	}
	migrations = append(migrations, migration{version: 2, name: "job leases and provenance", sqlite: v2, pg: v2})
	// Version 3: the scheduler's queries (ready jobs, followed jobs).
	v3 := []string{
		`CREATE INDEX jobs_ready ON jobs (priority DESC, created_at, id) WHERE state = 'QUEUED' AND backend = ''`,
		`CREATE INDEX jobs_placed ON jobs (lease_holder, lease_expires) WHERE state IN ('QUEUED', 'RUNNING') AND backend <> ''`,
	}
	migrations = append(migrations, migration{version: 3, name: "scheduler indexes", sqlite: v3, pg: v3})
}

// SchemaVersion is the schema version this release migrates to.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// Version returns the schema version of the open database.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM horizons_migrations`).Scan(&v)
	if err != nil {
		return 0, mapErr(err, "read schema version")
	}
	return int(v.Int64), nil
}

func (s *Store) migrate(ctx context.Context) error {
	create := `CREATE TABLE IF NOT EXISTS horizons_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns BIGINT NOT NULL)`
	for _, m := range migrations {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if s.d == postgres {
				// Serialise migrators of this schema. CREATE TABLE IF NOT
				// EXISTS itself is not safe against a concurrent creator
				// on PostgreSQL, so it runs under the lock too.
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7421001, hashtext(current_schema()))`); err != nil {
					return mapErr(err, "migration lock")
				}
			}
			if _, err := tx.ExecContext(ctx, create); err != nil {
				return mapErr(err, "create migrations table")
			}
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM horizons_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
				return mapErr(err, "read migrations")
			}
			if n > 0 {
				return nil
			}
			stmts := m.sqlite
			if s.d == postgres {
				stmts = m.pg
			}
			for _, st := range stmts {
				if _, err := tx.ExecContext(ctx, st); err != nil {
					return fmt.Errorf("sqlstore: migration %d (%s): %w", m.version, m.name, err)
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO horizons_migrations (version, name, applied_ns) VALUES (?, ?, ?)`), m.version, m.name, time.Now().UnixNano())
			return mapErr(err, "record migration")
		})
		if err != nil {
			return err
		}
	}
	return nil
}
