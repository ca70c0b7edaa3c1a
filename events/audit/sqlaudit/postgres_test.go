package sqlaudit_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/audit"
	"github.com/cosmic-horizons/horizons/events/audit/sqlaudit"
	"github.com/cosmic-horizons/horizons/events/bustest"
)

// postgres opens the PostgreSQL named by HORIZONS_POSTGRES_URL (default: the
// local server, database test). It skips when the server is unreachable,
// unless HORIZONS_REQUIRE_SERVICES=1, when that is a failure.
func postgres(t *testing.T) *sql.DB {
	t.Helper()
	dsn := os.Getenv("HORIZONS_POSTGRES_URL")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"
	}
	db, err := sql.Open("pgx", dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("HORIZONS_REQUIRE_SERVICES") == "1" {
			t.Fatalf("PostgreSQL unreachable and HORIZONS_REQUIRE_SERVICES=1: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set HORIZONS_POSTGRES_URL): %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestChainOnPostgres(t *testing.T) {
	db := postgres(t)
	table := "audit_test_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + table) })
	store, err := sqlaudit.New(ctx, db, &sqlaudit.Config{Dialect: sqlaudit.Postgres, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	chain := audit.New(store)
	for i := 1; i <= 8; i++ {
		e := bustest.JobEvent(t, events.JobProgress, fmt.Sprintf("job-%d", i%2), int64(i))
		if _, ok, err := chain.Append(ctx, e); err != nil || !ok {
			t.Fatalf("append %d: %v %v", i, ok, err)
		}
	}
	rep, err := chain.Verify(ctx)
	if err != nil || !rep.OK || rep.Records != 8 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if _, err := db.Exec(fmt.Sprintf(`UPDATE %s SET event = replace(event, '"gpus":3', '"gpus":4') WHERE seq = 5`, table)); err != nil {
		t.Fatal(err)
	}
	rep, _ = chain.Verify(ctx)
	if rep.OK || rep.FirstBad != 5 || rep.Problem != audit.ProblemTampered {
		t.Fatalf("Verify after editing record 5 = %+v", rep)
	}
}
