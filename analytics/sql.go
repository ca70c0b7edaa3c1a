package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SQL dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DefaultTablePrefix prefixes the SQL driver's tables when
// SQLConfig.TablePrefix is empty: analytics_raw, analytics_rollup and
// analytics_migrations.
const DefaultTablePrefix = "analytics_"

// SQLConfig configures the SQL driver; nil or zero means the defaults.
type SQLConfig struct {
	// Dialect is SQLite or Postgres; empty means SQLite.
	Dialect string
	// TablePrefix prefixes the table names; empty means
	// DefaultTablePrefix.
	TablePrefix string
	// BatchRows bounds the rows of one INSERT; zero means 500.
	BatchRows int
}

// SQL is the Driver on a database/sql handle (SQLite or PostgreSQL): raw
// points in <prefix>raw, minute and hour buckets in <prefix>rollup, the
// alert state (AlertDriver) in <prefix>alerts and <prefix>alert_rules, and
// its own forward-only migrations in <prefix>migrations. Times are stored as
// Unix nanoseconds. It does not close the handle it was given.
type SQL struct {
	db      *sql.DB
	dialect string
	p       string
	batch   int
}

var prefixRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,40}$`)

// migrations are applied in order, each once; never edit one that shipped.
var migrations = []string{
	`CREATE TABLE IF NOT EXISTS {p}raw (
	metric TEXT NOT NULL,
	agent TEXT NOT NULL,
	backend TEXT NOT NULL,
	usr TEXT NOT NULL,
	ts BIGINT NOT NULL,
	value DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS {p}raw_metric_ts ON {p}raw (metric, ts);
CREATE TABLE IF NOT EXISTS {p}rollup (
	res INTEGER NOT NULL,
	metric TEXT NOT NULL,
	agent TEXT NOT NULL,
	backend TEXT NOT NULL,
	usr TEXT NOT NULL,
	ts BIGINT NOT NULL,
	cnt BIGINT NOT NULL,
	total DOUBLE PRECISION NOT NULL,
	mn DOUBLE PRECISION NOT NULL,
	mx DOUBLE PRECISION NOT NULL,
	PRIMARY KEY (res, metric, agent, backend, usr, ts)
);
CREATE INDEX IF NOT EXISTS {p}rollup_res_metric_ts ON {p}rollup (res, metric, ts)`,
	// 2: the AlertEngine's state (AlertDriver): alerts as JSON documents
	// and the per-rule state.
	`CREATE TABLE IF NOT EXISTS {p}alerts (
	id TEXT PRIMARY KEY,
	rule TEXT NOT NULL,
	state TEXT NOT NULL,
	raised_at BIGINT NOT NULL,
	doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {p}alerts_raised_at ON {p}alerts (raised_at);
CREATE TABLE IF NOT EXISTS {p}alert_rules (
	rule TEXT PRIMARY KEY,
	breach_since BIGINT NOT NULL,
	silenced_until BIGINT NOT NULL
)`,
}

// SchemaVersion is the number of migrations the SQL driver applies.
func SchemaVersion() int { return len(migrations) }

// NewSQL returns the SQL driver on db after applying its migrations.
func NewSQL(ctx context.Context, db *sql.DB, cfg *SQLConfig) (*SQL, error) {
	if db == nil {
		return nil, errors.New("analytics: db is nil")
	}
	if cfg == nil {
		cfg = &SQLConfig{}
	}
	d := &SQL{db: db, dialect: cfg.Dialect, p: cfg.TablePrefix, batch: cfg.BatchRows}
	if d.dialect == "" {
		d.dialect = SQLite
	}
	if d.dialect != SQLite && d.dialect != Postgres {
		return nil, fmt.Errorf("analytics: SQLConfig.Dialect is %q, want %q or %q", d.dialect, SQLite, Postgres)
	}
	if d.p == "" {
		d.p = DefaultTablePrefix
	}
	if !prefixRE.MatchString(d.p) {
		return nil, fmt.Errorf("analytics: SQLConfig.TablePrefix %q is not a plain SQL identifier", d.p)
	}
	if d.batch <= 0 {
		d.batch = 500
	}
	if d.batch > 5000 {
		return nil, fmt.Errorf("analytics: SQLConfig.BatchRows is %d, want at most 5000", d.batch)
	}
	if err := d.migrate(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *SQL) q(s string) string {
	s = strings.ReplaceAll(s, "{p}", d.p)
	if d.dialect != Postgres {
		return s
	}
	var b strings.Builder
	n := 0
	for _, c := range s {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Version returns the number of migrations applied.
func (d *SQL) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := d.db.QueryRowContext(ctx, d.q(`SELECT MAX(version) FROM {p}migrations`)).Scan(&v); err != nil {
		return 0, fmt.Errorf("analytics: read schema version: %w", err)
	}
	return int(v.Int64), nil
}

func (d *SQL) migrate(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("analytics: migrate: %w", err)
	}
	defer tx.Rollback()
	if d.dialect == Postgres {
		// Serialise concurrent migrators (several replicas starting).
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.`+d.p+`migrations'))`); err != nil {
			return fmt.Errorf("analytics: migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.q(`CREATE TABLE IF NOT EXISTS {p}migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`)); err != nil {
		return fmt.Errorf("analytics: migrate: create {p}migrations: %w", err)
	}
	var have sql.NullInt64
	if err := tx.QueryRowContext(ctx, d.q(`SELECT MAX(version) FROM {p}migrations`)).Scan(&have); err != nil {
		return fmt.Errorf("analytics: migrate: read version: %w", err)
	}
	if int(have.Int64) > len(migrations) {
		return fmt.Errorf("analytics: the database is at schema version %d, newer than this build's %d", have.Int64, len(migrations))
	}
	for v := int(have.Int64) + 1; v <= len(migrations); v++ {
		for _, stmt := range strings.Split(migrations[v-1], ";\n") {
			if _, err := tx.ExecContext(ctx, d.q(stmt)); err != nil {
				return fmt.Errorf("analytics: migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO {p}migrations (version, applied_at) VALUES (?, ?)`), v, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("analytics: record migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("analytics: migrate: commit: %w", err)
	}
	return nil
}

// Write implements Driver in one transaction.
func (d *SQL) Write(ctx context.Context, raw []Point, rollups map[Resolution][]Bucket) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("analytics: write: %w", err)
	}
	defer tx.Rollback()
	for i := 0; i < len(raw); i += d.batch {
		chunk := raw[i:min(i+d.batch, len(raw))]
		var b strings.Builder
		b.WriteString(`INSERT INTO {p}raw (metric, agent, backend, usr, ts, value) VALUES `)
		args := make([]any, 0, 6*len(chunk))
		for j, p := range chunk {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?)")
			args = append(args, p.Metric, p.Labels.Agent, p.Labels.Backend, p.Labels.User, p.Time.UnixNano(), p.Value)
		}
		if _, err := tx.ExecContext(ctx, d.q(b.String()), args...); err != nil {
			return fmt.Errorf("analytics: write raw points: %w", err)
		}
	}
	least, greatest := "MIN", "MAX"
	if d.dialect == Postgres {
		least, greatest = "LEAST", "GREATEST"
	}
	for _, r := range []Resolution{Minute, Hour} {
		bs := rollups[r]
		for i := 0; i < len(bs); i += d.batch {
			chunk := bs[i:min(i+d.batch, len(bs))]
			var b strings.Builder
			b.WriteString(`INSERT INTO {p}rollup (res, metric, agent, backend, usr, ts, cnt, total, mn, mx) VALUES `)
			args := make([]any, 0, 10*len(chunk))
			for j, x := range chunk {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString("(?,?,?,?,?,?,?,?,?,?)")
				args = append(args, int(r), x.Metric, x.Labels.Agent, x.Labels.Backend, x.Labels.User, x.Start.UnixNano(), x.Count, x.Sum, x.Min, x.Max)
			}
			fmt.Fprintf(&b, ` ON CONFLICT (res, metric, agent, backend, usr, ts) DO UPDATE SET cnt = {p}rollup.cnt + excluded.cnt, total = {p}rollup.total + excluded.total, mn = %s({p}rollup.mn, excluded.mn), mx = %s({p}rollup.mx, excluded.mx)`, least, greatest)
			if _, err := tx.ExecContext(ctx, d.q(b.String()), args...); err != nil {
				return fmt.Errorf("analytics: write %s rollups: %w", r, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("analytics: write: commit: %w", err)
	}
	return nil
}

func (d *SQL) where(sel Selector) (string, []any) {
	var b strings.Builder
	var args []any
	for _, c := range []struct{ col, v string }{{"agent", sel.Labels.Agent}, {"backend", sel.Labels.Backend}, {"usr", sel.Labels.User}} {
		if c.v != "" {
			b.WriteString(" AND " + c.col + " = ?")
			args = append(args, c.v)
		}
	}
	return b.String(), args
}

// Scan implements Driver.
func (d *SQL) Scan(ctx context.Context, res Resolution, sel Selector, from, to time.Time, fn func(Bucket) bool) error {
	extra, eargs := d.where(sel)
	// Only the labels the caller reads are fetched: "" AS col costs no
	// string per row.
	cols := []string{"agent", "backend", "usr"}
	if sel.Read != nil {
		for i, by := range []string{ByAgent, ByBackend, ByUser} {
			if !slices.Contains(sel.Read, by) {
				cols[i] = "''"
			}
		}
	}
	lc := strings.Join(cols, ", ")
	var query string
	var args []any
	if res == Raw {
		query = `SELECT ` + lc + `, ts, value FROM {p}raw WHERE metric = ? AND ts >= ? AND ts < ?` + extra
		args = append([]any{sel.Metric, from.UnixNano(), to.UnixNano()}, eargs...)
	} else {
		query = `SELECT ` + lc + `, ts, cnt, total, mn, mx FROM {p}rollup WHERE res = ? AND metric = ? AND ts >= ? AND ts < ?` + extra
		args = append([]any{int(res), sel.Metric, from.UnixNano(), to.UnixNano()}, eargs...)
	}
	rows, err := d.db.QueryContext(ctx, d.q(query), args...)
	if err != nil {
		return fmt.Errorf("analytics: scan %s: %w", res, err)
	}
	defer rows.Close()
	b := Bucket{Metric: sel.Metric}
	var ts int64
	for rows.Next() {
		if res == Raw {
			var v float64
			if err := rows.Scan(&b.Labels.Agent, &b.Labels.Backend, &b.Labels.User, &ts, &v); err != nil {
				return fmt.Errorf("analytics: scan %s: %w", res, err)
			}
			b.Count, b.Sum, b.Min, b.Max = 1, v, v, v
		} else if err := rows.Scan(&b.Labels.Agent, &b.Labels.Backend, &b.Labels.User, &ts, &b.Count, &b.Sum, &b.Min, &b.Max); err != nil {
			return fmt.Errorf("analytics: scan %s: %w", res, err)
		}
		b.Start = time.Unix(0, ts).UTC()
		if !fn(b) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("analytics: scan %s: %w", res, err)
	}
	return nil
}

// DeleteBefore implements Driver.
func (d *SQL) DeleteBefore(ctx context.Context, res Resolution, t time.Time) (int64, error) {
	var r sql.Result
	var err error
	if res == Raw {
		r, err = d.db.ExecContext(ctx, d.q(`DELETE FROM {p}raw WHERE ts < ?`), t.UnixNano())
	} else {
		r, err = d.db.ExecContext(ctx, d.q(`DELETE FROM {p}rollup WHERE res = ? AND ts < ?`), int(res), t.UnixNano())
	}
	if err != nil {
		return 0, fmt.Errorf("analytics: delete %s before %s: %w", res, t.UTC().Format(time.RFC3339), err)
	}
	n, _ := r.RowsAffected()
	return n, nil
}

// Close implements Driver; the database handle stays open.
func (d *SQL) Close() error { return nil }
