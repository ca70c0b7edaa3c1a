// Package pgtest gives tests a private PostgreSQL schema on the server named
// by HORIZONS_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test),
// so parallel test runs never share tables. It registers the pgx
// database/sql driver; only test binaries import it.
package pgtest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// DefaultURL is used when HORIZONS_POSTGRES_URL is empty.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"

// URL returns HORIZONS_POSTGRES_URL or DefaultURL.
func URL() string {
	if u := os.Getenv("HORIZONS_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Schema creates a fresh schema named prefix plus a random suffix, drops it
// (with everything in it) when the test ends, and returns a DSN whose
// search_path is that schema. It skips the test when PostgreSQL is
// unreachable, and fails it instead when HORIZONS_REQUIRE_SERVICES=1.
func Schema(t testing.TB, prefix string) (dsn, schema string) {
	t.Helper()
	base := URL()
	db, err := sql.Open("pgx", base)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		if os.Getenv("HORIZONS_REQUIRE_SERVICES") == "1" {
			t.Fatalf("PostgreSQL unreachable and HORIZONS_REQUIRE_SERVICES=1: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set HORIZONS_POSTGRES_URL): %v", err)
	}
	schema = prefix + "_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		db.Close()
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("HORIZONS_POSTGRES_URL is not a URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}
