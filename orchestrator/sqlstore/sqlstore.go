package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// Config configures Open.
type Config struct {
	// Driver is "sqlite" (default) or the name of a registered PostgreSQL
	// database/sql driver ("pgx" or "postgres"); the importer registers
	// the PostgreSQL driver.
	Driver string
	// DSN is the data source. For SQLite a plain file path is enough: Open
	// adds WAL mode, a busy timeout and immediate transactions. ":memory:"
	// gives a private in-memory database.
	DSN string
	// Topic is the outbox topic for job events; empty means events.TopicJobs.
	Topic string
	// DB uses an existing handle instead of opening DSN; Close then leaves
	// it open.
	DB *sql.DB
}

type dialect int

const (
	sqlite dialect = iota
	postgres
)

// Store is an orchestrator.Store on database/sql.
type Store struct {
	db      *sql.DB
	d       dialect
	topic   string
	ownsDB  bool
	queries map[string]string
}

var _ orchestrator.Store = (*Store)(nil)

// Open opens (creating if needed) and migrates a store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	drv := cfg.Driver
	if drv == "" {
		drv = "sqlite"
	}
	s := &Store{topic: cfg.Topic, queries: map[string]string{}}
	if s.topic == "" {
		s.topic = events.TopicJobs
	}
	switch drv {
	case "sqlite":
		s.d = sqlite
	case "pgx", "postgres", "pgx/v5":
		s.d = postgres
	default:
		return nil, fmt.Errorf("sqlstore: Config.Driver %q is not supported; use \"sqlite\", \"pgx\" or \"postgres\"", drv)
	}
	if cfg.DB != nil {
		s.db = cfg.DB
	} else {
		dsn := cfg.DSN
		if dsn == "" {
			return nil, errors.New("sqlstore: Config.DSN is empty")
		}
		if s.d == sqlite {
			dsn = sqliteDSN(dsn)
			if p := sqlitePath(cfg.DSN); p != "" {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return nil, fmt.Errorf("sqlstore: create directory for %s: %w", p, err)
				}
			}
		}
		db, err := sql.Open(drv, dsn)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: open %s: %w", drv, err)
		}
		s.db = db
		s.ownsDB = true
	}
	if s.d == sqlite {
		// One connection: SQLite has one writer anyway, and this keeps
		// ":memory:" databases shared and BUSY errors impossible.
		s.db.SetMaxOpenConns(1)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: connect: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func sqlitePath(dsn string) string {
	if dsn == ":memory:" || strings.Contains(dsn, "mode=memory") {
		return ""
	}
	p := strings.TrimPrefix(dsn, "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

func sqliteDSN(dsn string) string {
	if dsn == ":memory:" {
		return "file::memory:?_pragma=foreign_keys(1)&_txlock=immediate"
	}
	if strings.Contains(dsn, "_pragma") || strings.Contains(dsn, "_txlock") {
		return dsn
	}
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// DB returns the underlying handle.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database if Open opened it.
func (s *Store) Close() error {
	if s.ownsDB && s.db != nil {
		return s.db.Close()
	}
	return nil
}

// q rewrites ? placeholders to $n for PostgreSQL.
func (s *Store) q(query string) string {
	if s.d != postgres {
		return query
	}
	if r, ok := s.queries[query]; ok {
		return r
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

func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := err.Error()
	if strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "23505") || strings.Contains(msg, "duplicate key") {
		return fmt.Errorf("%w: %s: %v", orchestrator.ErrConflict, what, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", what, err)
}

const jobCols = `id, owner, agent, dataset_id, gpus, memory_mb, wall_time_ns, params, priority,
	idempotency_key, correlation_id, workflow_id, depends_on, state, progress, backend,
	external_id, handle_data, result, error, attempts, next_attempt_at, created_at,
	updated_at, started_at, finished_at, version, sequence, lease_holder, lease_expires,
	submitted_spec, agent_version, attempt_log`

var numJobCols = len(strings.Split(jobCols, ","))

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func text(b []byte) string { return string(b) }

func jobArgs(j *orchestrator.Job) []any {
	deps, _ := json.Marshal(j.DependsOn)
	if len(j.DependsOn) == 0 {
		deps = nil
	}
	var attempts []byte
	if len(j.AttemptLog) > 0 {
		attempts, _ = json.Marshal(j.AttemptLog)
	}
	return []any{j.ID, j.Owner, j.Agent, j.DatasetID, j.GPUs, j.MemoryMB, int64(j.WallTime), text(j.Params), j.Priority,
		j.IdempotencyKey, j.CorrelationID, j.WorkflowID, text(deps), string(j.State), j.Progress, j.Backend,
		j.ExternalID, text(j.HandleData), text(j.Result), j.Error, j.Attempts, nanos(j.NextAttemptAt), nanos(j.CreatedAt),
		nanos(j.UpdatedAt), nanos(j.StartedAt), nanos(j.FinishedAt), j.Version, j.Sequence, j.LeaseHolder, nanos(j.LeaseExpiresAt),
		text(j.SubmittedSpec), j.AgentVersion, text(attempts)}
}

type scanner interface{ Scan(dest ...any) error }

func scanJob(r scanner) (*orchestrator.Job, error) {
	var (
		j                                                   orchestrator.Job
		wall, next, created, updated, start, fin, lease     int64
		params, deps, handle, result, state, spec, attempts string
	)
	err := r.Scan(&j.ID, &j.Owner, &j.Agent, &j.DatasetID, &j.GPUs, &j.MemoryMB, &wall, &params, &j.Priority,
		&j.IdempotencyKey, &j.CorrelationID, &j.WorkflowID, &deps, &state, &j.Progress, &j.Backend,
		&j.ExternalID, &handle, &result, &j.Error, &j.Attempts, &next, &created,
		&updated, &start, &fin, &j.Version, &j.Sequence, &j.LeaseHolder, &lease,
		&spec, &j.AgentVersion, &attempts)
	if err != nil {
		return nil, err
	}
	j.State = orchestrator.State(state)
	j.WallTime = time.Duration(wall)
	if params != "" {
		j.Params = json.RawMessage(params)
	}
	if handle != "" {
		j.HandleData = json.RawMessage(handle)
	}
	if result != "" {
		j.Result = json.RawMessage(result)
	}
	if spec != "" {
		j.SubmittedSpec = json.RawMessage(spec)
	}
	if attempts != "" {
		if err := json.Unmarshal([]byte(attempts), &j.AttemptLog); err != nil {
			return nil, fmt.Errorf("job %s: attempt_log column: %w", j.ID, err)
		}
	}
	j.LeaseExpiresAt = fromNanos(lease)
	if deps != "" {
		if err := json.Unmarshal([]byte(deps), &j.DependsOn); err != nil {
			return nil, fmt.Errorf("job %s: depends_on column: %w", j.ID, err)
		}
	}
	j.NextAttemptAt = fromNanos(next)
	j.CreatedAt = fromNanos(created)
	j.UpdatedAt = fromNanos(updated)
	j.StartedAt = fromNanos(start)
	j.FinishedAt = fromNanos(fin)
	return &j, nil
}

func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, jobID string, evs []events.Event) error {
	for _, e := range evs {
		if e.Subject != jobID {
			return fmt.Errorf("sqlstore: event %s has subject %q, want job %s", e.ID, e.Subject, jobID)
		}
		body, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("sqlstore: encode event %s: %w", e.ID, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO job_events (event_id, job_id, sequence, type, time_ns, body) VALUES (?, ?, ?, ?, ?, ?)`),
			e.ID, jobID, e.Sequence, string(e.Type), nanos(e.Time), string(body)); err != nil {
			return mapErr(err, "insert event "+e.ID)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO outbox (topic, event_id, body, created_ns) VALUES (?, ?, ?, ?)`),
			s.topic, e.ID, string(body), time.Now().UnixNano()); err != nil {
			return mapErr(err, "insert outbox "+e.ID)
		}
	}
	return nil
}

func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err, "begin")
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return mapErr(tx.Commit(), "commit")
}

// CreateJob implements orchestrator.Store.
func (s *Store) CreateJob(ctx context.Context, j *orchestrator.Job, evs []events.Event) (*orchestrator.Job, bool, error) {
	var (
		out     *orchestrator.Job
		created bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if j.IdempotencyKey != "" {
			row := tx.QueryRowContext(ctx, s.q(`SELECT `+jobCols+` FROM jobs WHERE owner = ? AND idempotency_key = ?`), j.Owner, j.IdempotencyKey)
			existing, err := scanJob(row)
			if err == nil {
				out = existing
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return mapErr(err, "look up idempotency key")
			}
		}
		ph := strings.TrimSuffix(strings.Repeat("?, ", numJobCols), ", ")
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO jobs (`+jobCols+`) VALUES (`+ph+`)`), jobArgs(j)...); err != nil {
			return mapErr(err, "insert job "+j.ID)
		}
		if err := s.insertEvents(ctx, tx, j.ID, evs); err != nil {
			return err
		}
		out, created = j.Clone(), true
		return nil
	})
	if err != nil {
		// A concurrent submission with the same key may have won the race.
		if j.IdempotencyKey != "" && errors.Is(err, orchestrator.ErrConflict) {
			row := s.db.QueryRowContext(ctx, s.q(`SELECT `+jobCols+` FROM jobs WHERE owner = ? AND idempotency_key = ?`), j.Owner, j.IdempotencyKey)
			if existing, err2 := scanJob(row); err2 == nil {
				return existing, false, nil
			}
		}
		return nil, false, err
	}
	return out, created, nil
}

// GetJob implements orchestrator.Store.
func (s *Store) GetJob(ctx context.Context, id string) (*orchestrator.Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, s.q(`SELECT `+jobCols+` FROM jobs WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: job %q", orchestrator.ErrNotFound, id)
	}
	if err != nil {
		return nil, mapErr(err, "get job "+id)
	}
	return j, nil
}

// JobByIdempotencyKey implements orchestrator.Store.
func (s *Store) JobByIdempotencyKey(ctx context.Context, owner, key string) (*orchestrator.Job, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: empty idempotency key", orchestrator.ErrNotFound)
	}
	j, err := scanJob(s.db.QueryRowContext(ctx, s.q(`SELECT `+jobCols+` FROM jobs WHERE owner = ? AND idempotency_key = ?`), owner, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no job of owner %q with idempotency key %q", orchestrator.ErrNotFound, owner, key)
	}
	if err != nil {
		return nil, mapErr(err, "look up idempotency key")
	}
	return j, nil
}

func where(owner, wf string, states []orchestrator.State) (string, []any) {
	var conds []string
	var args []any
	if owner != "" {
		conds = append(conds, "owner = ?")
		args = append(args, owner)
	}
	if wf != "" {
		conds = append(conds, "workflow_id = ?")
		args = append(args, wf)
	}
	if len(states) > 0 {
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(states)), ", ")
		conds = append(conds, "state IN ("+ph+")")
		for _, st := range states {
			args = append(args, string(st))
		}
	}
	return strings.Join(conds, " AND "), args
}

// ListJobs implements orchestrator.Store.
func (s *Store) ListJobs(ctx context.Context, q orchestrator.ListQuery) (orchestrator.Page, error) {
	if err := q.Normalize(); err != nil {
		return orchestrator.Page{}, err
	}
	w, args := where(q.Owner, q.WorkflowID, q.States)
	if q.Cursor != "" {
		ct, cid, err := orchestrator.DecodeCursor(q.Cursor)
		if err != nil {
			return orchestrator.Page{}, err
		}
		c := "(created_at < ? OR (created_at = ? AND id < ?))"
		if w != "" {
			w += " AND "
		}
		w += c
		args = append(args, ct.UnixNano(), ct.UnixNano(), cid)
	}
	query := `SELECT ` + jobCols + ` FROM jobs`
	if w != "" {
		query += " WHERE " + w
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, q.Limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return orchestrator.Page{}, mapErr(err, "list jobs")
	}
	defer rows.Close()
	var p orchestrator.Page
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return orchestrator.Page{}, mapErr(err, "scan job")
		}
		p.Jobs = append(p.Jobs, j)
	}
	if err := rows.Err(); err != nil {
		return orchestrator.Page{}, mapErr(err, "list jobs")
	}
	if len(p.Jobs) > q.Limit {
		p.Jobs = p.Jobs[:q.Limit]
		last := p.Jobs[len(p.Jobs)-1]
		p.NextCursor = orchestrator.EncodeCursor(last.CreatedAt, last.ID)
	}
	return p, nil
}

// CountJobs implements orchestrator.Store.
func (s *Store) CountJobs(ctx context.Context, owner string, states []orchestrator.State) (int, error) {
	w, args := where(owner, "", states)
	query := `SELECT COUNT(*) FROM jobs`
	if w != "" {
		query += " WHERE " + w
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(query), args...).Scan(&n); err != nil {
		return 0, mapErr(err, "count jobs")
	}
	return n, nil
}

// UpdateJob implements orchestrator.Store.
func (s *Store) UpdateJob(ctx context.Context, j *orchestrator.Job, prev int64, evs []events.Event) error {
	if j.Version != prev+1 {
		return fmt.Errorf("sqlstore: job %s: new version %d must be %d", j.ID, j.Version, prev+1)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		cols := strings.Split(strings.Join(strings.Fields(jobCols), ""), ",")
		sets := make([]string, 0, len(cols)-1)
		for _, c := range cols[1:] {
			sets = append(sets, c+" = ?")
		}
		args := append(jobArgs(j)[1:], j.ID, prev)
		res, err := tx.ExecContext(ctx, s.q(`UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? AND version = ?`), args...)
		if err != nil {
			return mapErr(err, "update job "+j.ID)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapErr(err, "update job "+j.ID)
		}
		if n == 0 {
			var v int64
			err := tx.QueryRowContext(ctx, s.q(`SELECT version FROM jobs WHERE id = ?`), j.ID).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: job %q", orchestrator.ErrNotFound, j.ID)
			}
			if err != nil {
				return mapErr(err, "update job "+j.ID)
			}
			return fmt.Errorf("%w: job %s is at version %d, not %d", orchestrator.ErrConflict, j.ID, v, prev)
		}
		return s.insertEvents(ctx, tx, j.ID, evs)
	})
}

// RenewLeases implements orchestrator.Store.
func (s *Store) RenewLeases(ctx context.Context, holder string, until time.Time) (int, error) {
	if holder == "" {
		return 0, nil
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE jobs SET lease_expires = ? WHERE lease_holder = ? AND state IN (?, ?, ?)`),
		nanos(until), holder, string(orchestrator.StateSubmitted), string(orchestrator.StateQueued), string(orchestrator.StateRunning))
	if err != nil {
		return 0, mapErr(err, "renew leases of "+holder)
	}
	n, err := res.RowsAffected()
	return int(n), mapErr(err, "renew leases of "+holder)
}

// ClaimReady implements orchestrator.Store. On PostgreSQL the candidate rows
// are locked with FOR UPDATE SKIP LOCKED, so concurrent replicas claim
// disjoint sets without waiting for each other; on SQLite the database's
// single writer serialises claims.
func (s *Store) ClaimReady(ctx context.Context, holder string, now, until time.Time, limit int, skipOwners []string) ([]*orchestrator.Job, error) {
	if limit <= 0 || holder == "" {
		return nil, nil
	}
	args := []any{holder, nanos(until), string(orchestrator.StateQueued), nanos(now), holder, nanos(now)}
	skip := ""
	if len(skipOwners) > 0 {
		skip = " AND owner NOT IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(skipOwners)), ", ") + ")"
		for _, o := range skipOwners {
			args = append(args, o)
		}
	}
	args = append(args, limit)
	lock := ""
	if s.d == postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	query := `UPDATE jobs SET lease_holder = ?, lease_expires = ?
		WHERE id IN (SELECT id FROM jobs WHERE state = ? AND backend = '' AND next_attempt_at <= ?
			AND (lease_holder = '' OR lease_holder = ? OR lease_expires <= ?)` + skip + `
			ORDER BY priority DESC, created_at, id LIMIT ?` + lock + `)
		RETURNING ` + jobCols
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, mapErr(err, "claim ready jobs")
	}
	defer rows.Close()
	var out []*orchestrator.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, mapErr(err, "scan claimed job")
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err, "claim ready jobs")
	}
	sort.Slice(out, func(a, b int) bool { return orchestrator.ReadyOrder(out[a], out[b]) })
	return out, nil
}

// ReleaseUnplaced implements orchestrator.Store.
func (s *Store) ReleaseUnplaced(ctx context.Context, holder string) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE jobs SET lease_holder = '', lease_expires = 0 WHERE lease_holder = ? AND backend = '' AND state IN (?, ?)`),
		holder, string(orchestrator.StateSubmitted), string(orchestrator.StateQueued))
	return mapErr(err, "release reservations of "+holder)
}

// PlacedUsage implements orchestrator.Store.
func (s *Store) PlacedUsage(ctx context.Context) (map[string]orchestrator.Usage, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT owner, COUNT(*), COALESCE(SUM(gpus), 0) FROM jobs WHERE state IN (?, ?) AND backend <> '' GROUP BY owner`),
		string(orchestrator.StateQueued), string(orchestrator.StateRunning))
	if err != nil {
		return nil, mapErr(err, "placed usage")
	}
	defer rows.Close()
	out := map[string]orchestrator.Usage{}
	for rows.Next() {
		var (
			owner string
			u     orchestrator.Usage
		)
		if err := rows.Scan(&owner, &u.Jobs, &u.GPUs); err != nil {
			return nil, mapErr(err, "placed usage")
		}
		out[owner] = u
	}
	return out, mapErr(rows.Err(), "placed usage")
}

// FollowedJobs implements orchestrator.Store.
func (s *Store) FollowedJobs(ctx context.Context, holder string, now time.Time) ([]*orchestrator.Job, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+jobCols+` FROM jobs WHERE state IN (?, ?) AND backend <> '' AND (lease_holder = ? OR lease_expires <= ?) ORDER BY created_at`),
		string(orchestrator.StateQueued), string(orchestrator.StateRunning), holder, nanos(now))
	if err != nil {
		return nil, mapErr(err, "followed jobs")
	}
	defer rows.Close()
	var out []*orchestrator.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, mapErr(err, "scan job")
		}
		out = append(out, j)
	}
	return out, mapErr(rows.Err(), "followed jobs")
}

// JobEvents implements orchestrator.Store.
func (s *Store) JobEvents(ctx context.Context, jobID string, after int64) ([]events.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT body FROM job_events WHERE job_id = ? AND sequence > ? ORDER BY sequence`), jobID, after)
	if err != nil {
		return nil, mapErr(err, "job events")
	}
	defer rows.Close()
	var out []events.Event
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, mapErr(err, "scan event")
		}
		var e events.Event
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			return nil, fmt.Errorf("sqlstore: decode stored event of job %s: %w", jobID, err)
		}
		out = append(out, e)
	}
	return out, mapErr(rows.Err(), "job events")
}

// PendingOutbox implements orchestrator.Store.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]orchestrator.OutboxRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, topic, body, created_ns FROM outbox WHERE published_ns IS NULL ORDER BY id LIMIT ?`), limit)
	if err != nil {
		return nil, mapErr(err, "read outbox")
	}
	defer rows.Close()
	var out []orchestrator.OutboxRecord
	for rows.Next() {
		var (
			r    orchestrator.OutboxRecord
			body string
			ns   int64
		)
		if err := rows.Scan(&r.ID, &r.Topic, &body, &ns); err != nil {
			return nil, mapErr(err, "scan outbox")
		}
		if err := json.Unmarshal([]byte(body), &r.Event); err != nil {
			return nil, fmt.Errorf("sqlstore: decode outbox record %d: %w", r.ID, err)
		}
		r.CreatedAt = fromNanos(ns)
		out = append(out, r)
	}
	return out, mapErr(rows.Err(), "read outbox")
}

// MarkPublished implements orchestrator.Store.
func (s *Store) MarkPublished(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	args := []any{time.Now().UnixNano()}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE outbox SET published_ns = ? WHERE id IN (`+ph+`)`), args...)
	return mapErr(err, "mark outbox published")
}
