// Package workflowtest is the conformance suite every workflow.Store passes:
// RunStore checks definitions and versions, runs with optimistic locking,
// run event history and the outbox.
package workflowtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator/workflow"
)

// Opener returns a fresh, empty store for one test; the suite closes it.
type Opener func(t *testing.T) workflow.Store

// RunStore runs the suite against stores made by open.
func RunStore(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s workflow.Store)
	}{
		{"CreateGetList", testCreateGetList},
		{"Versions", testVersions},
		{"ConcurrentVersions", testConcurrentVersions},
		{"Runs", testRuns},
		{"ListRuns", testListRuns},
		{"EventsAndOutbox", testEventsAndOutbox},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

func ctx() context.Context { return context.Background() }

// Def returns a small valid definition called name.
func Def(name string) *workflow.Definition {
	return &workflow.Definition{
		Name: name, Description: "test", FailurePolicy: workflow.Continue,
		Inputs: map[string]string{"ds": "vlass/x"},
		Steps: []workflow.Step{
			{Name: "a", Agent: "alphacal", DatasetID: "${inputs.ds}", GPUs: 1, Params: json.RawMessage(`{"iterations":4}`), Outputs: map[string]string{"out": "dataset_id"}},
			{Name: "b", Agent: "imaging", DatasetID: "${steps.a.outputs.out}", DependsOn: []string{"a"}},
		},
		CreatedBy: "alice",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func testCreateGetList(t *testing.T, s workflow.Store) {
	w, err := s.CreateWorkflow(ctx(), "alice", Def("wf-b"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "wf-b" || w.Owner != "alice" || w.CurrentVersion != 1 || w.LatestVersion != 1 || w.CreatedAt.IsZero() {
		t.Errorf("created %+v", w)
	}
	if _, err := s.CreateWorkflow(ctx(), "bob", Def("wf-b")); !errors.Is(err, workflow.ErrConflict) {
		t.Errorf("create twice: %v, want ErrConflict", err)
	}
	if g, err := s.GetWorkflow(ctx(), "wf-b"); err != nil || g.Owner != "alice" {
		t.Errorf("get after conflicting create: %+v %v (owner must stay alice)", g, err)
	}
	if _, err := s.CreateWorkflow(ctx(), "bob", Def("wf-a")); err != nil {
		t.Fatal(err)
	}
	d, err := s.GetVersion(ctx(), "wf-b", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := Def("wf-b")
	want.Version = 1
	wj, _ := json.Marshal(want)
	dj, _ := json.Marshal(d)
	if string(wj) != string(dj) {
		t.Errorf("definition round trip\n got %s\nwant %s", dj, wj)
	}
	if _, err := s.GetWorkflow(ctx(), "nope"); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	if _, err := s.GetVersion(ctx(), "wf-b", 2); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("get unknown version: %v", err)
	}
	ws, err := s.ListWorkflows(ctx())
	if err != nil || len(ws) != 2 || ws[0].Name != "wf-a" || ws[1].Name != "wf-b" {
		t.Errorf("list %v %v", ws, err)
	}
}

func testVersions(t *testing.T, s workflow.Store) {
	if _, err := s.AddVersion(ctx(), Def("v")); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("add version to unknown workflow: %v", err)
	}
	if _, err := s.CreateWorkflow(ctx(), "alice", Def("v")); err != nil {
		t.Fatal(err)
	}
	d2 := Def("v")
	d2.Description = "second"
	w, err := s.AddVersion(ctx(), d2)
	if err != nil || w.CurrentVersion != 2 || w.LatestVersion != 2 {
		t.Fatalf("add version: %+v %v", w, err)
	}
	got, err := s.GetVersion(ctx(), "v", 2)
	if err != nil || got.Description != "second" || got.Version != 2 {
		t.Errorf("version 2: %+v %v", got, err)
	}
	if w, err = s.SetCurrent(ctx(), "v", 1); err != nil || w.CurrentVersion != 1 || w.LatestVersion != 2 {
		t.Errorf("rollback: %+v %v", w, err)
	}
	if g, _ := s.GetWorkflow(ctx(), "v"); g.CurrentVersion != 1 {
		t.Errorf("rollback not stored: %+v", g)
	}
	for _, v := range []int{0, 3} {
		if _, err := s.SetCurrent(ctx(), "v", v); !errors.Is(err, workflow.ErrNotFound) {
			t.Errorf("SetCurrent %d: %v, want ErrNotFound", v, err)
		}
	}
	if _, err := s.SetCurrent(ctx(), "nope", 1); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("SetCurrent unknown: %v", err)
	}
	// Publishing after a rollback goes past the latest version.
	if w, err = s.AddVersion(ctx(), Def("v")); err != nil || w.LatestVersion != 3 || w.CurrentVersion != 3 {
		t.Errorf("add after rollback: %+v %v", w, err)
	}
}

func testConcurrentVersions(t *testing.T, s workflow.Store) {
	if _, err := s.CreateWorkflow(ctx(), "alice", Def("conc")); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	versions := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; attempt < 20; attempt++ {
				w, err := s.AddVersion(ctx(), Def("conc"))
				if errors.Is(err, workflow.ErrConflict) {
					continue
				}
				errs[i] = err
				if err == nil {
					versions[i] = w.LatestVersion
				}
				return
			}
			errs[i] = errors.New("20 conflicts in a row")
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("publisher %d: %v", i, errs[i])
		}
		if seen[versions[i]] || versions[i] < 2 || versions[i] > n+1 {
			t.Errorf("version %d given twice or out of range: %v", versions[i], versions)
		}
		seen[versions[i]] = true
	}
	if w, _ := s.GetWorkflow(ctx(), "conc"); w.LatestVersion != n+1 {
		t.Errorf("latest %d, want %d", w.LatestVersion, n+1)
	}
}

// NewRun returns a run of workflow wf owned by owner.
func NewRun(id, owner, wf string, created time.Time) *workflow.Run {
	return &workflow.Run{
		ID: id, Owner: owner, Workflow: wf, Version: 1, Inputs: map[string]string{"ds": "x"},
		CorrelationID: "corr-" + id, State: workflow.RunRunning,
		Steps:     []workflow.StepRun{{Name: "a", State: workflow.StepPending}, {Name: "b", State: workflow.StepPending}},
		CreatedAt: created, UpdatedAt: created, RowVersion: 1,
	}
}

// Event returns a valid workflow event of r with sequence seq.
func Event(t *testing.T, r *workflow.Run, typ events.Type, seq int64) events.Event {
	t.Helper()
	ev, err := events.New(typ, r.ID, events.WorkflowData{RunID: r.ID, Workflow: r.Workflow, Version: r.Version, Owner: r.Owner, State: string(r.State)})
	if err != nil {
		t.Fatal(err)
	}
	ev.CorrelationID = r.CorrelationID
	ev.Sequence = seq
	return ev
}

func testRuns(t *testing.T, s workflow.Store) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	r := NewRun("run-1", "alice", "wf", now)
	if err := s.CreateRun(ctx(), r, []events.Event{Event(t, r, events.WorkflowSubmitted, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(ctx(), r, nil); !errors.Is(err, workflow.ErrConflict) {
		t.Errorf("create run twice: %v", err)
	}
	got, err := s.GetRun(ctx(), "run-1")
	if err != nil || got.Owner != "alice" || len(got.Steps) != 2 || !got.CreatedAt.Equal(now) || got.Inputs["ds"] != "x" {
		t.Fatalf("get run %+v %v", got, err)
	}
	n := got.Clone()
	n.Steps[0].State, n.Steps[0].JobID, n.Steps[0].Outputs = workflow.StepCompleted, "job-1", json.RawMessage(`{"out":"x"}`)
	n.RowVersion = 2
	if err := s.UpdateRun(ctx(), n, 1, nil); err != nil {
		t.Fatal(err)
	}
	stale := got.Clone()
	stale.RowVersion = 2
	stale.State = workflow.RunCancelled
	if err := s.UpdateRun(ctx(), stale, 1, nil); !errors.Is(err, workflow.ErrConflict) {
		t.Errorf("stale update: %v, want ErrConflict", err)
	}
	got, _ = s.GetRun(ctx(), "run-1")
	if got.State != workflow.RunRunning || got.Steps[0].JobID != "job-1" || string(got.Steps[0].Outputs) != `{"out":"x"}` || got.RowVersion != 2 {
		t.Errorf("after updates %+v", got)
	}
	ghost := NewRun("ghost", "alice", "wf", now)
	ghost.RowVersion = 2
	if err := s.UpdateRun(ctx(), ghost, 1, nil); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("update unknown: %v, want ErrNotFound", err)
	}
	if _, err := s.GetRun(ctx(), "ghost"); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
}

func testListRuns(t *testing.T, s workflow.Store) {
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 6 {
		owner := "alice"
		if i%2 == 1 {
			owner = "bob"
		}
		r := NewRun(fmt.Sprintf("run-%d", i), owner, "wf", base.Add(time.Duration(i)*time.Minute))
		if i < 2 {
			r.State = workflow.RunCompleted
		}
		if err := s.CreateRun(ctx(), r, nil); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(rs []*workflow.Run) string {
		out := ""
		for _, r := range rs {
			out += r.ID + " "
		}
		return out
	}
	all, err := s.ListRuns(ctx(), "", false, 0)
	if err != nil || ids(all) != "run-5 run-4 run-3 run-2 run-1 run-0 " {
		t.Errorf("all runs: %s %v", ids(all), err)
	}
	if a, _ := s.ListRuns(ctx(), "alice", false, 0); ids(a) != "run-4 run-2 run-0 " {
		t.Errorf("alice's runs: %s", ids(a))
	}
	if a, _ := s.ListRuns(ctx(), "", true, 0); ids(a) != "run-5 run-4 run-3 run-2 " {
		t.Errorf("active runs: %s", ids(a))
	}
	if a, _ := s.ListRuns(ctx(), "bob", true, 1); ids(a) != "run-5 " {
		t.Errorf("bob's newest active run: %s", ids(a))
	}
}

func testEventsAndOutbox(t *testing.T, s workflow.Store) {
	r := NewRun("run-ev", "alice", "wf", time.Now().UTC())
	e1 := Event(t, r, events.WorkflowSubmitted, 1)
	if err := s.CreateRun(ctx(), r, []events.Event{e1}); err != nil {
		t.Fatal(err)
	}
	n := r.Clone()
	n.RowVersion = 2
	n.State = workflow.RunCancelled
	e2 := Event(t, n, events.WorkflowCancelled, 2)
	if err := s.UpdateRun(ctx(), n, 1, []events.Event{e2}); err != nil {
		t.Fatal(err)
	}
	// A failed update writes no events.
	bad := n.Clone()
	bad.RowVersion = 3
	if err := s.UpdateRun(ctx(), bad, 1, []events.Event{Event(t, bad, events.WorkflowCancelled, 3)}); !errors.Is(err, workflow.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	evs, err := s.RunEvents(ctx(), "run-ev")
	if err != nil || len(evs) != 2 || evs[0].ID != e1.ID || evs[1].ID != e2.ID || evs[1].Sequence != 2 {
		t.Fatalf("run events %+v %v", evs, err)
	}
	if evs[0].CorrelationID != "corr-run-ev" || !evs[0].Time.Equal(e1.Time) || string(evs[0].Data) != string(e1.Data) {
		t.Errorf("event round trip %+v", evs[0])
	}
	pend, err := s.PendingOutbox(ctx(), 10)
	if err != nil || len(pend) != 2 || pend[0].Event.ID != e1.ID || pend[1].Event.ID != e2.ID || pend[0].ID >= pend[1].ID {
		t.Fatalf("pending %+v %v", pend, err)
	}
	if one, _ := s.PendingOutbox(ctx(), 1); len(one) != 1 || one[0].Event.ID != e1.ID {
		t.Errorf("limit 1: %+v", one)
	}
	if err := s.MarkPublished(ctx(), []int64{pend[0].ID}); err != nil {
		t.Fatal(err)
	}
	if rest, _ := s.PendingOutbox(ctx(), 10); len(rest) != 1 || rest[0].Event.ID != e2.ID {
		t.Errorf("after marking one: %+v", rest)
	}
	if evs, _ := s.RunEvents(ctx(), "run-ev"); len(evs) != 2 {
		t.Errorf("marking published dropped history: %d events", len(evs))
	}
}
