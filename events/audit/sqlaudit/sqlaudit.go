// Package sqlaudit keeps the audit chain of events/audit in a SQL database
// through database/sql: SQLite (the embedded default, e.g. the job store's
// file) or PostgreSQL. It brings no driver of its own; open the *sql.DB with
// the driver of your choice ("sqlite" from modernc.org/sqlite, "pgx").
//
// The table is append-only by construction of the Store: no statement updates
// or deletes a row. Anything that does (a person with database access) is
// what audit.Chain.Verify detects.
package sqlaudit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/audit"
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DefaultTable is the table name used when Config.Table is empty.
const DefaultTable = "audit_records"

// Config configures a Store; nil or zero means the defaults.
type Config struct {
	// Dialect is SQLite or Postgres; empty means SQLite.
	Dialect string
	// Table is the table name; empty means DefaultTable.
	Table string
}

// Store is an audit.Store on a SQL database.
type Store struct {
	db      *sql.DB
	dialect string
	table   string
}

var _ audit.Store = (*Store)(nil)

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// New returns a Store on db and creates its table if needed.
func New(ctx context.Context, db *sql.DB, cfg *Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlaudit: db is nil")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	s := &Store{db: db, dialect: cfg.Dialect, table: cfg.Table}
	if s.dialect == "" {
		s.dialect = SQLite
	}
	if s.dialect != SQLite && s.dialect != Postgres {
		return nil, fmt.Errorf("sqlaudit: Config.Dialect is %q, want %q or %q", s.dialect, SQLite, Postgres)
	}
	if s.table == "" {
		s.table = DefaultTable
	}
	if !tableName.MatchString(s.table) {
		return nil, fmt.Errorf("sqlaudit: Config.Table %q is not a plain SQL identifier", s.table)
	}
	ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	seq BIGINT PRIMARY KEY,
	event_id TEXT NOT NULL UNIQUE,
	event TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
)`, s.table)
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("sqlaudit: create table %s: %w", s.table, err)
	}
	return s, nil
}

// q rewrites ? placeholders as $n for PostgreSQL.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	out := make([]byte, 0, len(query)+8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			out = fmt.Appendf(out, "$%d", n)
			continue
		}
		out = append(out, query[i])
	}
	return string(out)
}

// Append implements audit.Store. A record whose Seq is not one more than the
// last stored one, or whose event is already stored, is an error wrapping
// audit.ErrConflict.
func (s *Store) Append(ctx context.Context, r audit.Record) (err error) {
	body, err := json.Marshal(r.Event)
	if err != nil {
		return fmt.Errorf("sqlaudit: encode event %s: %w", r.Event.ID, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlaudit: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT MAX(seq) FROM %s", s.table)).Scan(&last); err != nil {
		return fmt.Errorf("sqlaudit: read the last sequence: %w", err)
	}
	if want := last.Int64 + 1; r.Seq != want {
		return fmt.Errorf("%w: record %d, next is %d", audit.ErrConflict, r.Seq, want)
	}
	_, err = tx.ExecContext(ctx, s.q(fmt.Sprintf("INSERT INTO %s (seq, event_id, event, prev_hash, hash) VALUES (?, ?, ?, ?, ?)", s.table)),
		r.Seq, r.Event.ID, string(body), r.PrevHash.String(), r.Hash.String())
	if err != nil {
		// A concurrent writer took the sequence or stored the event.
		return fmt.Errorf("%w: insert record %d (event %s): %v", audit.ErrConflict, r.Seq, r.Event.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlaudit: commit record %d: %w", r.Seq, err)
	}
	return nil
}

// Last implements audit.Store.
func (s *Store) Last(ctx context.Context) (audit.Record, bool, error) {
	recs, err := s.query(ctx, fmt.Sprintf("SELECT seq, event, prev_hash, hash FROM %s ORDER BY seq DESC LIMIT 1", s.table))
	if err != nil || len(recs) == 0 {
		return audit.Record{}, false, err
	}
	return recs[0], true, nil
}

// HasEvent implements audit.Store.
func (s *Store) HasEvent(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.q(fmt.Sprintf("SELECT 1 FROM %s WHERE event_id = ?", s.table)), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlaudit: look up event %s: %w", id, err)
	}
	return true, nil
}

// Range implements audit.Store.
func (s *Store) Range(ctx context.Context, from int64, limit int) ([]audit.Record, error) {
	return s.query(ctx, s.q(fmt.Sprintf("SELECT seq, event, prev_hash, hash FROM %s WHERE seq >= ? ORDER BY seq LIMIT ?", s.table)), from, limit)
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]audit.Record, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlaudit: query %s: %w", s.table, err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		var r audit.Record
		var body, prev, hash string
		if err := rows.Scan(&r.Seq, &body, &prev, &hash); err != nil {
			return nil, fmt.Errorf("sqlaudit: scan: %w", err)
		}
		// A row that no longer decodes is kept with what can be read, so
		// that Verify reports it as tampered rather than failing to read.
		if err := json.Unmarshal([]byte(body), &r.Event); err != nil {
			r.Event = events.Event{ID: fmt.Sprintf("undecodable row %d", r.Seq)}
		}
		r.PrevHash, _ = parseHash(prev)
		r.Hash, _ = parseHash(hash)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlaudit: read %s: %w", s.table, err)
	}
	return out, nil
}

func parseHash(s string) (audit.Hash, error) {
	var h audit.Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("sqlaudit: hash %q is not %d hex bytes", s, len(h))
	}
	copy(h[:], b)
	return h, nil
}
