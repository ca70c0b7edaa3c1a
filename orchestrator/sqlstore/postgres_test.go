package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cosmic-horizons/horizons/internal/pgtest"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/orchestratortest"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
)

func openPG(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: "pgx", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPostgresConformance(t *testing.T) {
	orchestratortest.RunStore(t, func(t *testing.T) orchestrator.Store {
		dsn, _ := pgtest.Schema(t, "orch_conf")
		return openPG(t, dsn)
	})
}

// TestPostgresConcurrentMigrations opens many stores on one fresh schema at
// once: every Open must succeed and the schema must end at the latest
// version with each migration recorded exactly once.
func TestPostgresConcurrentMigrations(t *testing.T) {
	dsn, _ := pgtest.Schema(t, "orch_mig")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*sqlstore.Store, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = sqlstore.Open(context.Background(), sqlstore.Config{Driver: "pgx", DSN: dsn})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ctx := context.Background()
	v, err := stores[0].Version(ctx)
	if err != nil || v != sqlstore.SchemaVersion() {
		t.Fatalf("Version = %d, %v; want %d", v, err, sqlstore.SchemaVersion())
	}
	var rows int
	if err := stores[0].DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM horizons_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != sqlstore.SchemaVersion() {
		t.Fatalf("horizons_migrations holds %d rows, want %d (one per migration)", rows, sqlstore.SchemaVersion())
	}
	// The schema works: a job round-trips through any of the stores.
	j := orchestratortest.NewJob("alice", 0)
	if _, _, err := stores[3].CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := stores[5].GetJob(ctx, j.ID); err != nil || got.ID != j.ID {
		t.Fatalf("GetJob via another store = %v, %v", got, err)
	}
}

// TestPostgresSchemasAreSeparate checks that the search_path isolation the
// tests rely on holds: a job in one schema is not visible in another.
func TestPostgresSchemasAreSeparate(t *testing.T) {
	dsnA, _ := pgtest.Schema(t, "orch_sep")
	dsnB, _ := pgtest.Schema(t, "orch_sep")
	a, b := openPG(t, dsnA), openPG(t, dsnB)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	j := orchestratortest.NewJob("alice", 0)
	if _, _, err := a.CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetJob(ctx, j.ID); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Fatalf("job of schema A visible in schema B: %v", err)
	}
}
