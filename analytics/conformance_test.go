package analytics_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/cosmic-horizons/horizons/analytics"
	"github.com/cosmic-horizons/horizons/analytics/analyticstest"
	"github.com/cosmic-horizons/horizons/internal/pgtest"
)

func TestMemoryConformance(t *testing.T) {
	analyticstest.RunDriver(t, func(t *testing.T) analytics.Driver { return analytics.NewMemory() })
}

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "a.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLiteConformance(t *testing.T) {
	analyticstest.RunDriver(t, func(t *testing.T) analytics.Driver {
		d, err := analytics.NewSQL(context.Background(), openSQLite(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestPostgresConformance(t *testing.T) {
	analyticstest.RunDriver(t, func(t *testing.T) analytics.Driver {
		dsn, _ := pgtest.Schema(t, "analytics_conf")
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		d, err := analytics.NewSQL(context.Background(), db, &analytics.SQLConfig{Dialect: analytics.Postgres})
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// TestSQLMigrationsOnce opens the driver twice on one database: the
// second open applies nothing and the version is the build's.
func TestSQLMigrationsOnce(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	for range 2 {
		d, err := analytics.NewSQL(ctx, db, &analytics.SQLConfig{TablePrefix: "m_"})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := d.Version(ctx); err != nil || v != analytics.SchemaVersion() {
			t.Fatalf("Version = %d, %v; want %d", v, err, analytics.SchemaVersion())
		}
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM m_migrations`).Scan(&n); err != nil || n != analytics.SchemaVersion() {
		t.Fatalf("m_migrations holds %d rows (%v), want %d", n, err, analytics.SchemaVersion())
	}
	if _, err := analytics.NewSQL(ctx, db, &analytics.SQLConfig{TablePrefix: "x; DROP"}); err == nil {
		t.Fatal("a table prefix with SQL in it was accepted")
	}
	if _, err := analytics.NewSQL(ctx, db, &analytics.SQLConfig{Dialect: "oracle"}); err == nil {
		t.Fatal("dialect oracle was accepted")
	}
}

// TestPostgresConcurrentMigrations opens the driver from several
// goroutines on one fresh schema: each migration is recorded once.
func TestPostgresConcurrentMigrations(t *testing.T) {
	dsn, _ := pgtest.Schema(t, "analytics_mig")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	errs := make(chan error, 6)
	for range 6 {
		go func() {
			_, err := analytics.NewSQL(context.Background(), db, &analytics.SQLConfig{Dialect: analytics.Postgres})
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent migration: %v", err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM analytics_migrations`).Scan(&n); err != nil || n != analytics.SchemaVersion() {
		t.Fatalf("analytics_migrations holds %d rows (%v), want %d", n, err, analytics.SchemaVersion())
	}
}
