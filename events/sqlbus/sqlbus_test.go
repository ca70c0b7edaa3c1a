package sqlbus_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/cosmic-horizons/horizons/events/bustest"
	"github.com/cosmic-horizons/horizons/events/sqlbus"
)

// postgres opens HORIZONS_POSTGRES_URL (default: the local server, database
// test). It skips when the server is unreachable, unless
// HORIZONS_REQUIRE_SERVICES=1, when that is a failure.
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

// sqliteDB opens a fresh SQLite file with the settings the transport needs:
// WAL, a busy timeout, and transactions that take the write lock at BEGIN.
func sqliteDB(t *testing.T) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bus.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func harness(t *testing.T, db *sql.DB, dialect, prefix string, features tests.Features) bustest.Harness {
	mk := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		tr, err := sqlbus.New(db, &sqlbus.Config{Dialect: dialect, ConsumerGroup: group, PollInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		return tr.Publisher(), tr.Subscriber()
	}
	features.GenerateTopicFunc = func(tctx tests.TestContext) string {
		return prefix + strings.ReplaceAll(string(tctx.TestID), "-", "")[:20]
	}
	return bustest.Harness{
		New:           func(t *testing.T) (message.Publisher, message.Subscriber) { return mk(t, "bustest") },
		Watermill:     func(t *testing.T) (message.Publisher, message.Subscriber) { return mk(t, "suite") },
		ConsumerGroup: mk,
		Topic:         func(t *testing.T) string { return prefix + strings.ReplaceAll(uuid.NewString(), "-", "")[:20] },
		Features:      features,
	}
}

func TestConformancePostgres(t *testing.T) {
	db := postgres(t)
	prefix := fmt.Sprintf("hzt%d_", time.Now().UnixNano()%1e9)
	t.Cleanup(func() { dropTables(t, db, prefix) })
	bustest.Run(t, harness(t, db, sqlbus.Postgres, prefix, tests.Features{
		ConsumerGroups:      true,
		ExactlyOnceDelivery: false,
		GuaranteedOrder:     true,
		Persistent:          true,
		ForceShort:          true,
	}))
}

// dropTables removes the tables a test run created.
func dropTables(t *testing.T, db *sql.DB, prefix string) {
	rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE tablename LIKE $1 OR tablename LIKE $2`,
		"watermill_"+prefix+"%", "watermill_offsets_"+prefix+"%")
	if err != nil {
		t.Logf("list test tables: %v", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		if _, err := db.Exec(`DROP TABLE IF EXISTS "` + n + `"`); err != nil {
			t.Logf("drop %s: %v", n, err)
		}
	}
}

// SQLite has one writer at a time, and a subscriber holds the write lock
// while its batch waits for acknowledgements. Watermill's suite runs its
// tests in parallel, so each of its tests gets a database file of its own
// (tests never share topics anyway); the SDK checks share one.
func TestConformanceSQLite(t *testing.T) {
	shared := sqliteDB(t)
	var mu sync.Mutex
	perTest := map[string]*sql.DB{}
	dbFor := func(t *testing.T) *sql.DB {
		parts := strings.Split(t.Name(), "/")
		if len(parts) < 4 || parts[1] != "Watermill" {
			return shared
		}
		key := strings.Join(parts[:4], "/")
		mu.Lock()
		defer mu.Unlock()
		if db, ok := perTest[key]; ok {
			return db
		}
		db := sqliteDB(t)
		perTest[key] = db
		return db
	}
	mk := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		tr, err := sqlbus.New(dbFor(t), &sqlbus.Config{Dialect: sqlbus.SQLite, ConsumerGroup: group})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		return tr.Publisher(), tr.Subscriber()
	}
	bustest.Run(t, bustest.Harness{
		New:           func(t *testing.T) (message.Publisher, message.Subscriber) { return mk(t, "bustest") },
		Watermill:     func(t *testing.T) (message.Publisher, message.Subscriber) { return mk(t, "suite") },
		ConsumerGroup: mk,
		SkipWatermillTests: map[string]string{
			"TestTopic": "SQLite: a subscription waiting for an ack holds the database's only write lock, " +
				"and TestTopic reads its second topic's subscription first",
			"TestConcurrentSubscribe": "SQLite: its ten competing subscribers take turns on the database's only write lock, " +
				"each holding it while its batch waits for acks, and time out waiting for it",
		},
		Features: tests.Features{
			ConsumerGroups:      true,
			ExactlyOnceDelivery: false,
			GuaranteedOrder:     true,
			// Competing subscribers take turns on SQLite's write lock; order is
			// checked with one.
			GuaranteedOrderWithSingleSubscriber: true,
			Persistent:                          true,
			ForceShort:                          true,
			GenerateTopicFunc: func(tctx tests.TestContext) string {
				return "hzt_" + strings.ReplaceAll(string(tctx.TestID), "-", "")[:20]
			},
		},
	})
}

func TestConfigErrors(t *testing.T) {
	db := sqliteDB(t)
	cases := map[string]*sqlbus.Config{
		`Config.Dialect is "mysql"`: {Dialect: "mysql"},
		"must not be negative":      {Dialect: sqlbus.SQLite, BatchSize: -1},
	}
	for want, cfg := range cases {
		if _, err := sqlbus.New(db, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error mentioning %s, got %v", want, err)
		}
	}
	if _, err := sqlbus.New(nil, nil); err == nil {
		t.Error("nil db accepted")
	}
}

// BenchmarkThroughput compares raw watermill-sql with the SDK path on the
// local PostgreSQL (skipped when unreachable). Run:
// go test -run '^$' -bench Throughput ./events/sqlbus/
func BenchmarkThroughput(b *testing.B) {
	dsn := os.Getenv("HORIZONS_POSTGRES_URL")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"
	}
	db, err := sql.Open("pgx", dsn)
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		b.Skipf("PostgreSQL unreachable: %v", err)
	}
	defer db.Close()
	defer dropBenchTables(b, db)
	for _, publishers := range []int{1, 4} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			bustest.Bench(b, func(b *testing.B) (message.Publisher, message.Subscriber) {
				tr, err := sqlbus.New(db, &sqlbus.Config{Dialect: sqlbus.Postgres, ConsumerGroup: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				return tr.Publisher(), tr.Subscriber()
			}, publishers)
		})
	}
}

// dropBenchTables removes the tables of bustest.Bench's topics ("bench_...").
func dropBenchTables(b *testing.B, db *sql.DB) {
	rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE tablename LIKE 'watermill_bench_%' OR tablename LIKE 'watermill_offsets_bench_%'`)
	if err != nil {
		b.Logf("list bench tables: %v", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		_, _ = db.Exec(`DROP TABLE IF EXISTS "` + n + `"`)
	}
}
