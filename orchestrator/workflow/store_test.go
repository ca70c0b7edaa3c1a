package workflow_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cosmic-horizons/horizons/internal/pgtest"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
	"github.com/cosmic-horizons/horizons/orchestrator/workflow"
	"github.com/cosmic-horizons/horizons/orchestrator/workflow/workflowtest"
)

func TestMemStoreConformance(t *testing.T) {
	workflowtest.RunStore(t, func(t *testing.T) workflow.Store { return workflow.NewMemStore() })
}

// openSQLite opens a job store on a SQLite file and the workflow store on
// the same handle.
func openSQLite(t *testing.T, path string) (*sqlstore.Store, *workflow.SQLStore) {
	t.Helper()
	jobs, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: "sqlite", DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jobs.Close() })
	wf, err := workflow.OpenSQL(context.Background(), jobs.DB(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return jobs, wf
}

func TestSQLiteStoreConformance(t *testing.T) {
	workflowtest.RunStore(t, func(t *testing.T) workflow.Store {
		_, s := openSQLite(t, filepath.Join(t.TempDir(), "jobs.db"))
		return s
	})
}

func openPG(t *testing.T, dsn string) (*sqlstore.Store, *workflow.SQLStore) {
	t.Helper()
	jobs, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: "pgx", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jobs.Close() })
	wf, err := workflow.OpenSQL(context.Background(), jobs.DB(), &workflow.SQLConfig{Dialect: "postgres"})
	if err != nil {
		t.Fatal(err)
	}
	return jobs, wf
}

func TestPostgresStoreConformance(t *testing.T) {
	workflowtest.RunStore(t, func(t *testing.T) workflow.Store {
		dsn, _ := pgtest.Schema(t, "wf_conf")
		_, s := openPG(t, dsn)
		return s
	})
}

// TestPostgresConcurrentMigrations migrates one fresh schema from several
// handles at once: all succeed and each migration is recorded once.
func TestPostgresConcurrentMigrations(t *testing.T) {
	dsn, _ := pgtest.Schema(t, "wf_mig")
	jobs, _ := openPG(t, dsn)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = workflow.OpenSQL(context.Background(), jobs.DB(), &workflow.SQLConfig{Dialect: "pgx"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
	}
	var rows int
	if err := jobs.DB().QueryRow(`SELECT COUNT(*) FROM workflow_migrations`).Scan(&rows); err != nil || rows != workflow.SQLSchemaVersion() {
		t.Errorf("workflow_migrations has %d rows (%v), want %d", rows, err, workflow.SQLSchemaVersion())
	}
}

func TestOpenSQLRejectsUnknownDialect(t *testing.T) {
	jobs, _ := openSQLite(t, ":memory:")
	if _, err := workflow.OpenSQL(context.Background(), jobs.DB(), &workflow.SQLConfig{Dialect: "oracle"}); err == nil {
		t.Error("dialect oracle accepted")
	}
	s, err := workflow.OpenSQL(context.Background(), jobs.DB(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Version(context.Background()); err != nil || v != workflow.SQLSchemaVersion() {
		t.Errorf("Version = %d, %v", v, err)
	}
}
