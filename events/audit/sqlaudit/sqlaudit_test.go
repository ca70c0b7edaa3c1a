package sqlaudit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/audit"
	"github.com/cosmic-horizons/horizons/events/audit/sqlaudit"
	"github.com/cosmic-horizons/horizons/events/bustest"
)

var ctx = context.Background()

func open(t *testing.T, path string) (*sql.DB, *sqlaudit.Store) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := sqlaudit.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db, s
}

func TestChainOnSQLiteSurvivesReopenAndCatchesTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	_, store := open(t, path)
	chain := audit.New(store)
	var evs []events.Event
	for i := 1; i <= 12; i++ {
		e := bustest.JobEvent(t, events.JobProgress, fmt.Sprintf("job-%d", i%4), int64(i))
		evs = append(evs, e)
		if _, ok, err := chain.Append(ctx, e); err != nil || !ok {
			t.Fatalf("append %d: %v %v", i, ok, err)
		}
	}
	if _, ok, err := chain.Append(ctx, evs[3]); err != nil || ok {
		t.Fatalf("redelivery appended: %v %v", ok, err)
	}
	if err := store.Append(ctx, audit.Record{Seq: 5, Event: evs[0]}); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("out-of-sequence append: %v", err)
	}

	// A new process opens the same file.
	db2, store2 := open(t, path)
	chain2 := audit.New(store2)
	rep, err := chain2.Verify(ctx)
	if err != nil || !rep.OK || rep.Records != 12 {
		t.Fatalf("Verify after reopen = %+v, %v", rep, err)
	}
	last, _, _ := store2.Last(ctx)
	if last.Seq != 12 || last.Event.ID != evs[11].ID || !last.Event.Time.Equal(evs[11].Time) || rep.Head != last.Hash {
		t.Fatalf("last record %+v", last)
	}

	// Someone with database access edits record 7.
	if _, err := db2.Exec(`UPDATE audit_records SET event = replace(event, '"gpus":3', '"gpus":8') WHERE seq = 7`); err != nil {
		t.Fatal(err)
	}
	rep, _ = chain2.Verify(ctx)
	if rep.OK || rep.FirstBad != 7 || rep.Problem != audit.ProblemTampered {
		t.Fatalf("Verify after editing record 7 = %+v", rep)
	}
	// ... and then deletes record 3.
	if _, err := db2.Exec(`DELETE FROM audit_records WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	rep, _ = chain2.Verify(ctx)
	if rep.OK || rep.FirstBad != 3 || rep.Problem != audit.ProblemMissing || !strings.Contains(rep.Detail, "record 2 is followed by record 4") {
		t.Fatalf("Verify after deleting record 3 = %+v", rep)
	}
	// Garbage in a row is reported, not a read failure.
	if _, err := db2.Exec(`UPDATE audit_records SET event = 'not json', hash = 'zz' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	rep, err = chain2.Verify(ctx)
	if err != nil || rep.OK || rep.FirstBad != 1 || rep.Problem != audit.ProblemTampered {
		t.Fatalf("Verify with a garbage row = %+v, %v", rep, err)
	}
}

func TestConfigErrors(t *testing.T) {
	db, _ := open(t, filepath.Join(t.TempDir(), "a.db"))
	if _, err := sqlaudit.New(ctx, db, &sqlaudit.Config{Dialect: "oracle"}); err == nil || !strings.Contains(err.Error(), `"oracle"`) {
		t.Errorf("dialect: %v", err)
	}
	if _, err := sqlaudit.New(ctx, db, &sqlaudit.Config{Table: "x; DROP TABLE y"}); err == nil || !strings.Contains(err.Error(), "Config.Table") {
		t.Errorf("table: %v", err)
	}
	if _, err := sqlaudit.New(ctx, nil, nil); err == nil {
		t.Error("nil db accepted")
	}
	if s, err := sqlaudit.New(ctx, db, &sqlaudit.Config{Table: "compliance_chain"}); err != nil {
		t.Fatal(err)
	} else if ok, err := s.HasEvent(ctx, "nope"); err != nil || ok {
		t.Fatalf("HasEvent on an empty table: %v %v", ok, err)
	}
}
