package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/orchestratortest"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
)

func TestSQLiteConformance(t *testing.T) {
	orchestratortest.RunStore(t, func(t *testing.T) orchestrator.Store {
		s, err := sqlstore.Open(context.Background(), sqlstore.Config{DSN: filepath.Join(t.TempDir(), "jobs.db")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSQLiteMemoryConformance(t *testing.T) {
	orchestratortest.RunStore(t, func(t *testing.T) orchestrator.Store {
		s, err := sqlstore.Open(context.Background(), sqlstore.Config{DSN: ":memory:"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "jobs.db")
	s, err := sqlstore.Open(ctx, sqlstore.Config{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	j := orchestratortest.NewJob("alice", 0)
	if _, _, err := s.CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := sqlstore.Open(ctx, sqlstore.Config{DSN: path})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	v, err := s2.Version(ctx)
	if err != nil || v != sqlstore.SchemaVersion() {
		t.Fatalf("schema version = %d, %v; want %d", v, err, sqlstore.SchemaVersion())
	}
	got, err := s2.GetJob(ctx, j.ID)
	if err != nil || got.DatasetID != j.DatasetID {
		t.Fatalf("after reopen GetJob = %+v, %v", got, err)
	}
}

func TestBadDriver(t *testing.T) {
	_, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: "oracle", DSN: "x"})
	if err == nil {
		t.Fatal("Open with driver oracle succeeded")
	}
}
