package workflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/events"
)

// SQLConfig configures OpenSQL.
type SQLConfig struct {
	// Dialect is "sqlite" (the default) or "postgres" (also accepted:
	// "pgx", "pgx/v5"); it must match the driver behind the handle.
	Dialect string
}

// SQLStore is the Store on database/sql: SQLite or PostgreSQL, usually on
// the handle of orchestrator/sqlstore (sqlstore.Store.DB), so jobs and
// workflows live in one database. Its tables are prefixed workflow_ and
// migrated by OpenSQL through its own forward-only migrations table,
// workflow_migrations. Definitions, runs and events are stored as JSON
// bodies next to the columns queries need; times as UTC Unix nanoseconds.
type SQLStore struct {
	db *sql.DB
	pg bool
}

var _ Store = (*SQLStore)(nil)

type sqlMigration struct {
	version int
	name    string
	sqlite  []string
	pg      []string
}

var wfCommon = []string{
	`CREATE TABLE workflows (
		name TEXT PRIMARY KEY,
		owner TEXT NOT NULL,
		current_version INTEGER NOT NULL,
		latest_version INTEGER NOT NULL,
		created_ns BIGINT NOT NULL,
		updated_ns BIGINT NOT NULL
	)`,
	`CREATE TABLE workflow_versions (
		name TEXT NOT NULL REFERENCES workflows (name),
		version INTEGER NOT NULL,
		body TEXT NOT NULL,
		created_ns BIGINT NOT NULL,
		PRIMARY KEY (name, version)
	)`,
	`CREATE TABLE workflow_runs (
		id TEXT PRIMARY KEY,
		owner TEXT NOT NULL,
		workflow TEXT NOT NULL,
		version INTEGER NOT NULL,
		state TEXT NOT NULL,
		row_version BIGINT NOT NULL,
		created_ns BIGINT NOT NULL,
		body TEXT NOT NULL
	)`,
	`CREATE INDEX workflow_runs_state ON workflow_runs (state)`,
	`CREATE INDEX workflow_runs_owner ON workflow_runs (owner, created_ns)`,
	`CREATE TABLE workflow_events (
		event_id TEXT PRIMARY KEY,
		run_id TEXT NOT NULL,
		sequence BIGINT NOT NULL,
		body TEXT NOT NULL,
		UNIQUE (run_id, sequence)
	)`,
}

// wfMigrations are forward-only: never edit one that has shipped, add one.
var wfMigrations = []sqlMigration{{
	version: 1,
	name:    "workflows, versions, runs, events, outbox",
	sqlite: append(append([]string{}, wfCommon...),
		`CREATE TABLE workflow_outbox (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			event_id TEXT NOT NULL UNIQUE,
			body TEXT NOT NULL,
			published_ns BIGINT
		)`,
		`CREATE INDEX workflow_outbox_pending ON workflow_outbox (id) WHERE published_ns IS NULL`),
	pg: append(append([]string{}, wfCommon...),
		`CREATE TABLE workflow_outbox (
			id BIGSERIAL PRIMARY KEY,
			event_id TEXT NOT NULL UNIQUE,
			body TEXT NOT NULL,
			published_ns BIGINT
		)`,
		`CREATE INDEX workflow_outbox_pending ON workflow_outbox (id) WHERE published_ns IS NULL`),
}}

// SQLSchemaVersion is the schema version this release migrates to.
func SQLSchemaVersion() int { return wfMigrations[len(wfMigrations)-1].version }

// OpenSQL migrates the workflow tables on db and returns a store on it.
// Close leaves db open. On PostgreSQL a transaction-scoped advisory lock
// serialises concurrent migrators; on SQLite the write lock does.
func OpenSQL(ctx context.Context, db *sql.DB, cfg *SQLConfig) (*SQLStore, error) {
	if db == nil {
		return nil, errors.New("workflow: OpenSQL: db is nil")
	}
	s := &SQLStore{db: db}
	d := "sqlite"
	if cfg != nil && cfg.Dialect != "" {
		d = cfg.Dialect
	}
	switch d {
	case "sqlite":
	case "postgres", "pgx", "pgx/v5":
		s.pg = true
	default:
		return nil, fmt.Errorf("workflow: OpenSQL: SQLConfig.Dialect %q is not supported; use \"sqlite\" or \"postgres\"", d)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Version returns the schema version of the workflow tables.
func (s *SQLStore) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM workflow_migrations`).Scan(&v); err != nil {
		return 0, s.mapErr(err, "read schema version")
	}
	return int(v.Int64), nil
}

func (s *SQLStore) migrate(ctx context.Context) error {
	create := `CREATE TABLE IF NOT EXISTS workflow_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns BIGINT NOT NULL)`
	for _, m := range wfMigrations {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if s.pg {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7421002, hashtext(current_schema()))`); err != nil {
					return s.mapErr(err, "migration lock")
				}
			}
			if _, err := tx.ExecContext(ctx, create); err != nil {
				return s.mapErr(err, "create workflow_migrations")
			}
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM workflow_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
				return s.mapErr(err, "read workflow_migrations")
			}
			if n > 0 {
				return nil
			}
			stmts := m.sqlite
			if s.pg {
				stmts = m.pg
			}
			for _, st := range stmts {
				if _, err := tx.ExecContext(ctx, st); err != nil {
					return fmt.Errorf("workflow: migration %d (%s): %w", m.version, m.name, err)
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO workflow_migrations (version, name, applied_ns) VALUES (?, ?, ?)`), m.version, m.name, time.Now().UnixNano())
			return s.mapErr(err, "record migration")
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// q rewrites ? placeholders to $n on PostgreSQL.
func (s *SQLStore) q(query string) string {
	if !s.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s *SQLStore) mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed") {
		return fmt.Errorf("%w: %s: %v", ErrClosed, what, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "23505") || strings.Contains(msg, "duplicate key") {
		return fmt.Errorf("%w: %s: %v", ErrConflict, what, err)
	}
	return fmt.Errorf("workflow: sql store: %s: %w", what, err)
}

func (s *SQLStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err, "begin")
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return s.mapErr(tx.Commit(), "commit")
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

const wfCols = `name, owner, current_version, latest_version, created_ns, updated_ns`

func scanWF(r interface{ Scan(...any) error }) (*Workflow, error) {
	var w Workflow
	var c, u int64
	if err := r.Scan(&w.Name, &w.Owner, &w.CurrentVersion, &w.LatestVersion, &c, &u); err != nil {
		return nil, err
	}
	w.CreatedAt, w.UpdatedAt = fromNS(c), fromNS(u)
	return &w, nil
}

func (s *SQLStore) getWF(ctx context.Context, tx *sql.Tx, name string, lock bool) (*Workflow, error) {
	query := `SELECT ` + wfCols + ` FROM workflows WHERE name = ?`
	if lock && s.pg {
		query += ` FOR UPDATE`
	}
	w, err := scanWF(tx.QueryRowContext(ctx, s.q(query), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: workflow %q", ErrNotFound, name)
	}
	return w, s.mapErr(err, "read workflow")
}

func (s *SQLStore) insertVersion(ctx context.Context, tx *sql.Tx, d *Definition) error {
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO workflow_versions (name, version, body, created_ns) VALUES (?, ?, ?, ?)`), d.Name, d.Version, string(body), ns(d.CreatedAt))
	return s.mapErr(err, fmt.Sprintf("insert workflow %q version %d", d.Name, d.Version))
}

// CreateWorkflow implements Store.
func (s *SQLStore) CreateWorkflow(ctx context.Context, owner string, d *Definition) (*Workflow, error) {
	now := time.Now().UTC()
	d = d.Clone()
	d.Version = 1
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now
	}
	w := &Workflow{Name: d.Name, Owner: owner, CurrentVersion: 1, LatestVersion: 1, CreatedAt: fromNS(ns(now)), UpdatedAt: fromNS(ns(now))}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO workflows (`+wfCols+`) VALUES (?, ?, ?, ?, ?, ?)`), w.Name, w.Owner, 1, 1, ns(now), ns(now))
		if err != nil {
			err = s.mapErr(err, "insert workflow")
			if errors.Is(err, ErrConflict) {
				return fmt.Errorf("%w: workflow %q already exists", ErrConflict, d.Name)
			}
			return err
		}
		return s.insertVersion(ctx, tx, d)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// AddVersion implements Store.
func (s *SQLStore) AddVersion(ctx context.Context, d *Definition) (*Workflow, error) {
	d = d.Clone()
	var out *Workflow
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		w, err := s.getWF(ctx, tx, d.Name, true)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		d.Version = w.LatestVersion + 1
		if d.CreatedAt.IsZero() {
			d.CreatedAt = now
		}
		if err := s.insertVersion(ctx, tx, d); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE workflows SET current_version = ?, latest_version = ?, updated_ns = ? WHERE name = ? AND latest_version = ?`), d.Version, d.Version, ns(now), d.Name, w.LatestVersion)
		if err != nil {
			return s.mapErr(err, "update workflow")
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: workflow %q changed while publishing a version", ErrConflict, d.Name)
		}
		w.CurrentVersion, w.LatestVersion, w.UpdatedAt = d.Version, d.Version, fromNS(ns(now))
		out = w
		return nil
	})
	return out, err
}

// SetCurrent implements Store.
func (s *SQLStore) SetCurrent(ctx context.Context, name string, version int) (*Workflow, error) {
	var out *Workflow
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		w, err := s.getWF(ctx, tx, name, true)
		if err != nil {
			return err
		}
		if version < 1 || version > w.LatestVersion {
			return fmt.Errorf("%w: workflow %q has no version %d (latest %d)", ErrNotFound, name, version, w.LatestVersion)
		}
		now := time.Now().UTC()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE workflows SET current_version = ?, updated_ns = ? WHERE name = ?`), version, ns(now), name); err != nil {
			return s.mapErr(err, "update workflow")
		}
		w.CurrentVersion, w.UpdatedAt = version, fromNS(ns(now))
		out = w
		return nil
	})
	return out, err
}

// GetWorkflow implements Store.
func (s *SQLStore) GetWorkflow(ctx context.Context, name string) (*Workflow, error) {
	w, err := scanWF(s.db.QueryRowContext(ctx, s.q(`SELECT `+wfCols+` FROM workflows WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: workflow %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, s.mapErr(err, "read workflow")
	}
	return w, nil
}

// GetVersion implements Store.
func (s *SQLStore) GetVersion(ctx context.Context, name string, version int) (*Definition, error) {
	var body string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT body FROM workflow_versions WHERE name = ? AND version = ?`), name, version).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: workflow %q version %d", ErrNotFound, name, version)
	}
	if err != nil {
		return nil, s.mapErr(err, "read workflow version")
	}
	var d Definition
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		return nil, fmt.Errorf("workflow: stored definition %q version %d is corrupt: %w", name, version, err)
	}
	return &d, nil
}

// ListWorkflows implements Store.
func (s *SQLStore) ListWorkflows(ctx context.Context) ([]*Workflow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+wfCols+` FROM workflows ORDER BY name`)
	if err != nil {
		return nil, s.mapErr(err, "list workflows")
	}
	defer rows.Close()
	out := []*Workflow{}
	for rows.Next() {
		w, err := scanWF(rows)
		if err != nil {
			return nil, s.mapErr(err, "scan workflow")
		}
		out = append(out, w)
	}
	return out, s.mapErr(rows.Err(), "list workflows")
}

func (s *SQLStore) insertEvents(ctx context.Context, tx *sql.Tx, runID string, evs []events.Event) error {
	for _, ev := range evs {
		body, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("workflow: encode event %s: %w", ev.ID, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO workflow_events (event_id, run_id, sequence, body) VALUES (?, ?, ?, ?)`), ev.ID, runID, ev.Sequence, string(body)); err != nil {
			return s.mapErr(err, "insert workflow event")
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO workflow_outbox (event_id, body) VALUES (?, ?)`), ev.ID, string(body)); err != nil {
			return s.mapErr(err, "insert workflow outbox")
		}
	}
	return nil
}

// CreateRun implements Store.
func (s *SQLStore) CreateRun(ctx context.Context, r *Run, evs []events.Event) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO workflow_runs (id, owner, workflow, version, state, row_version, created_ns, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			r.ID, r.Owner, r.Workflow, r.Version, string(r.State), r.RowVersion, ns(r.CreatedAt), string(body))
		if err != nil {
			err = s.mapErr(err, "insert run")
			if errors.Is(err, ErrConflict) {
				return fmt.Errorf("%w: run %s already exists", ErrConflict, r.ID)
			}
			return err
		}
		return s.insertEvents(ctx, tx, r.ID, evs)
	})
}

func decodeRun(body string) (*Run, error) {
	var r Run
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("workflow: stored run is corrupt: %w", err)
	}
	return &r, nil
}

// GetRun implements Store.
func (s *SQLStore) GetRun(ctx context.Context, id string) (*Run, error) {
	var body string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT body FROM workflow_runs WHERE id = ?`), id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: run %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, s.mapErr(err, "read run")
	}
	return decodeRun(body)
}

// UpdateRun implements Store.
func (s *SQLStore) UpdateRun(ctx context.Context, r *Run, prev int64, evs []events.Event) error {
	if r.RowVersion != prev+1 {
		return fmt.Errorf("%w: run %s: new row version %d must be %d", ErrConflict, r.ID, r.RowVersion, prev+1)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE workflow_runs SET state = ?, row_version = ?, body = ? WHERE id = ? AND row_version = ?`),
			string(r.State), r.RowVersion, string(body), r.ID, prev)
		if err != nil {
			return s.mapErr(err, "update run")
		}
		if n, _ := res.RowsAffected(); n != 1 {
			var cur int64
			err := tx.QueryRowContext(ctx, s.q(`SELECT row_version FROM workflow_runs WHERE id = ?`), r.ID).Scan(&cur)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: run %q", ErrNotFound, r.ID)
			}
			return fmt.Errorf("%w: run %s is at row version %d, update expected %d", ErrConflict, r.ID, cur, prev)
		}
		return s.insertEvents(ctx, tx, r.ID, evs)
	})
}

// ListRuns implements Store.
func (s *SQLStore) ListRuns(ctx context.Context, owner string, active bool, limit int) ([]*Run, error) {
	query := `SELECT body FROM workflow_runs WHERE 1 = 1`
	var args []any
	if owner != "" {
		query += ` AND owner = ?`
		args = append(args, owner)
	}
	if active {
		query += ` AND state = ?`
		args = append(args, string(RunRunning))
	}
	query += ` ORDER BY created_ns DESC, id DESC`
	if limit > 0 {
		query += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.mapErr(err, "list runs")
	}
	var bodies []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, s.mapErr(err, "scan run")
		}
		bodies = append(bodies, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err, "list runs")
	}
	out := make([]*Run, 0, len(bodies))
	for _, b := range bodies {
		r, err := decodeRun(b)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// RunEvents implements Store.
func (s *SQLStore) RunEvents(ctx context.Context, runID string) ([]events.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT body FROM workflow_events WHERE run_id = ? ORDER BY sequence`), runID)
	if err != nil {
		return nil, s.mapErr(err, "read run events")
	}
	defer rows.Close()
	var out []events.Event
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, s.mapErr(err, "scan run event")
		}
		var ev events.Event
		if err := json.Unmarshal([]byte(b), &ev); err != nil {
			return nil, fmt.Errorf("workflow: stored event is corrupt: %w", err)
		}
		out = append(out, ev)
	}
	return out, s.mapErr(rows.Err(), "read run events")
}

// PendingOutbox implements Store.
func (s *SQLStore) PendingOutbox(ctx context.Context, limit int) ([]OutboxRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, body FROM workflow_outbox WHERE published_ns IS NULL ORDER BY id LIMIT `+strconv.Itoa(limit)))
	if err != nil {
		return nil, s.mapErr(err, "read workflow outbox")
	}
	defer rows.Close()
	var out []OutboxRecord
	for rows.Next() {
		var rec OutboxRecord
		var b string
		if err := rows.Scan(&rec.ID, &b); err != nil {
			return nil, s.mapErr(err, "scan workflow outbox")
		}
		if err := json.Unmarshal([]byte(b), &rec.Event); err != nil {
			return nil, fmt.Errorf("workflow: stored outbox event is corrupt: %w", err)
		}
		out = append(out, rec)
	}
	return out, s.mapErr(rows.Err(), "read workflow outbox")
}

// MarkPublished implements Store.
func (s *SQLStore) MarkPublished(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixNano()
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE workflow_outbox SET published_ns = ? WHERE id = ?`), now, id); err != nil {
				return s.mapErr(err, "mark workflow outbox")
			}
		}
		return nil
	})
}

// Close implements Store; the database handle stays open.
func (s *SQLStore) Close() error { return nil }
