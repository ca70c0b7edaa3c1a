// Package orchestratortest is the conformance suite every orchestrator.Store
// passes. A driver's test calls RunStore with a constructor for fresh,
// empty stores:
//
//	func TestConformance(t *testing.T) {
//		orchestratortest.RunStore(t, func(t *testing.T) orchestrator.Store {
//			return memstore.New(nil)
//		})
//	}
package orchestratortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// NewStore returns a fresh, empty store; the suite closes it.
type NewStore func(t *testing.T) orchestrator.Store

// RunStore runs the store conformance suite.
func RunStore(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s orchestrator.Store)
	}{
		{"CreateGetRoundTrip", testCreateGet},
		{"GetUnknown", testGetUnknown},
		{"Idempotency", testIdempotency},
		{"UpdateAndEvents", testUpdateAndEvents},
		{"UpdateConflict", testUpdateConflict},
		{"UpdateAtomic", testUpdateAtomic},
		{"Outbox", testOutbox},
		{"ListPagination", testListPagination},
		{"ListFilters", testListFilters},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"LeasesAndProvenance", testLeasesAndProvenance},
		{"ConcurrentClaim", testConcurrentClaim},
		{"ClaimReady", testClaimReady},
		{"ClaimReadyConcurrent", testClaimReadyConcurrent},
		{"UsageAndFollowed", testUsageAndFollowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var base = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// NewJob returns a valid SUBMITTED job created at base+offset.
func NewJob(owner string, offset time.Duration) *orchestrator.Job {
	return &orchestrator.Job{
		ID:            uuid.NewString(),
		Owner:         owner,
		Agent:         "alphacal",
		DatasetID:     "vlass/VLASS2.1/T10t01",
		GPUs:          2,
		MemoryMB:      4096,
		WallTime:      90 * time.Minute,
		Params:        json.RawMessage(`{"flagger":"sumthreshold","iterations":3}`),
		Priority:      5,
		CorrelationID: uuid.NewString(),
		State:         orchestrator.StateSubmitted,
		CreatedAt:     base.Add(offset),
		UpdatedAt:     base.Add(offset),
		Version:       1,
	}
}

// Event returns the next event for j (advancing j.Sequence).
func Event(t testing.TB, j *orchestrator.Job, typ events.Type) events.Event {
	t.Helper()
	j.Sequence++
	e, err := events.New(typ, j.ID, events.JobData{JobID: j.ID, Owner: j.Owner, Agent: j.Agent, DatasetID: j.DatasetID, GPUs: j.GPUs, State: string(j.State)})
	if err != nil {
		t.Fatal(err)
	}
	e.Sequence = j.Sequence
	e.CorrelationID = j.CorrelationID
	e.Time = base.Add(time.Duration(j.Sequence) * time.Second)
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustCreate(t *testing.T, s orchestrator.Store, j *orchestrator.Job) *orchestrator.Job {
	t.Helper()
	got, created, err := s.CreateJob(ctx(t), j, []events.Event{Event(t, j, events.JobSubmitted)})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	if !created {
		t.Fatalf("CreateJob: created = false for a new job")
	}
	return got
}

func equalJobs(t *testing.T, got, want *orchestrator.Job) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("job mismatch\n got: %s\nwant: %s", g, w)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("created_at = %v, want %v in UTC", got.CreatedAt, want.CreatedAt)
	}
	if string(got.HandleData) != string(want.HandleData) {
		t.Fatalf("handle data = %s, want %s", got.HandleData, want.HandleData)
	}
}

func testCreateGet(t *testing.T, s orchestrator.Store) {
	j := NewJob("alice", 0)
	j.IdempotencyKey = "key-1"
	j.DependsOn = []string{"a", "b"}
	j.WorkflowID = "wf-1"
	mustCreate(t, s, j)
	got, err := s.GetJob(ctx(t), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	equalJobs(t, got, j)
	evs, err := s.JobEvents(ctx(t), j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != events.JobSubmitted || evs[0].Sequence != 1 || evs[0].CorrelationID != j.CorrelationID {
		t.Fatalf("events = %+v, want one job.submitted with sequence 1", evs)
	}
	if !evs[0].Time.Equal(base.Add(time.Second)) {
		t.Fatalf("event time = %v, want %v", evs[0].Time, base.Add(time.Second))
	}
}

func testGetUnknown(t *testing.T, s orchestrator.Store) {
	_, err := s.GetJob(ctx(t), uuid.NewString())
	if !errors.Is(err, orchestrator.ErrNotFound) {
		t.Fatalf("GetJob(unknown) = %v, want ErrNotFound", err)
	}
	j := NewJob("alice", 0)
	j.Version = 2
	err = s.UpdateJob(ctx(t), j, 1, nil)
	if !errors.Is(err, orchestrator.ErrNotFound) {
		t.Fatalf("UpdateJob(unknown) = %v, want ErrNotFound", err)
	}
}

func testIdempotency(t *testing.T, s orchestrator.Store) {
	a := NewJob("alice", 0)
	a.IdempotencyKey = "same"
	mustCreate(t, s, a)
	b := NewJob("alice", time.Second)
	b.IdempotencyKey = "same"
	got, created, err := s.CreateJob(ctx(t), b, []events.Event{Event(t, b, events.JobSubmitted)})
	if err != nil {
		t.Fatal(err)
	}
	if created || got.ID != a.ID {
		t.Fatalf("second CreateJob with the same key: created=%v id=%s, want false and %s", created, got.ID, a.ID)
	}
	if byKey, err := s.JobByIdempotencyKey(ctx(t), "alice", "same"); err != nil || byKey.ID != a.ID {
		t.Fatalf("JobByIdempotencyKey(alice, same) = %v, %v; want job %s", byKey, err, a.ID)
	}
	if _, err := s.JobByIdempotencyKey(ctx(t), "bob", "same"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Fatalf("JobByIdempotencyKey(bob, same) before bob used it = %v, want ErrNotFound", err)
	}
	if _, err := s.GetJob(ctx(t), b.ID); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Fatalf("the duplicate job was stored: %v", err)
	}
	if evs, _ := s.JobEvents(ctx(t), b.ID, 0); len(evs) != 0 {
		t.Fatalf("the duplicate's events were stored: %v", evs)
	}
	c := NewJob("bob", 2*time.Second)
	c.IdempotencyKey = "same"
	mustCreate(t, s, c) // another owner may reuse the key
	n, err := s.CountJobs(ctx(t), "", nil)
	if err != nil || n != 2 {
		t.Fatalf("CountJobs = %d, %v; want 2", n, err)
	}
}

func update(t *testing.T, s orchestrator.Store, j *orchestrator.Job, to orchestrator.State, typ events.Type) {
	t.Helper()
	prev := j.Version
	j.State = to
	j.Version++
	j.UpdatedAt = j.UpdatedAt.Add(time.Second)
	if err := s.UpdateJob(ctx(t), j, prev, []events.Event{Event(t, j, typ)}); err != nil {
		t.Fatalf("UpdateJob to %s: %v", to, err)
	}
}

func testUpdateAndEvents(t *testing.T, s orchestrator.Store) {
	j := NewJob("alice", 0)
	mustCreate(t, s, j)
	update(t, s, j, orchestrator.StateQueued, events.JobQueued)
	j.Backend, j.ExternalID, j.HandleData = "simgpu", "task-7", json.RawMessage(`{"node":3}`)
	j.StartedAt = base.Add(time.Minute)
	update(t, s, j, orchestrator.StateRunning, events.JobRunning)
	j.Progress = 42.5
	j.Result = json.RawMessage(`{"flagged":0.031}`)
	j.FinishedAt = base.Add(2 * time.Minute)
	update(t, s, j, orchestrator.StateCompleted, events.JobCompleted)
	got, err := s.GetJob(ctx(t), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	equalJobs(t, got, j)
	evs, err := s.JobEvents(ctx(t), j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []events.Type{events.JobSubmitted, events.JobQueued, events.JobRunning, events.JobCompleted}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.Type != want[i] || e.Sequence != int64(i+1) {
			t.Fatalf("event %d = %s seq %d, want %s seq %d", i, e.Type, e.Sequence, want[i], i+1)
		}
	}
	after, err := s.JobEvents(ctx(t), j.ID, 2)
	if err != nil || len(after) != 2 || after[0].Sequence != 3 {
		t.Fatalf("JobEvents(after 2) = %v, %v; want sequences 3 and 4", after, err)
	}
}

func testUpdateConflict(t *testing.T, s orchestrator.Store) {
	j := NewJob("alice", 0)
	mustCreate(t, s, j)
	stale := j.Clone()
	update(t, s, j, orchestrator.StateQueued, events.JobQueued)
	stale.State = orchestrator.StateCancelled
	stale.Version = 2
	err := s.UpdateJob(ctx(t), stale, 1, []events.Event{Event(t, stale, events.JobCancelled)})
	if !errors.Is(err, orchestrator.ErrConflict) {
		t.Fatalf("stale UpdateJob = %v, want ErrConflict", err)
	}
	got, _ := s.GetJob(ctx(t), j.ID)
	if got.State != orchestrator.StateQueued || got.Version != 2 {
		t.Fatalf("after a conflict the job is %s v%d, want QUEUED v2", got.State, got.Version)
	}
	evs, _ := s.JobEvents(ctx(t), j.ID, 0)
	if len(evs) != 2 {
		t.Fatalf("after a conflict there are %d events, want 2", len(evs))
	}
}

func testUpdateAtomic(t *testing.T, s orchestrator.Store) {
	j := NewJob("alice", 0)
	mustCreate(t, s, j)
	first, _ := s.JobEvents(ctx(t), j.ID, 0)
	pending0, _ := s.PendingOutbox(ctx(t), 1000)
	n := j.Clone()
	n.State = orchestrator.StateQueued
	n.Version = 2
	dup := Event(t, n, events.JobQueued)
	dup.ID = first[0].ID // an event id that is already stored
	err := s.UpdateJob(ctx(t), n, 1, []events.Event{dup})
	if err == nil {
		t.Fatal("UpdateJob with a duplicate event id succeeded")
	}
	got, _ := s.GetJob(ctx(t), j.ID)
	if got.State != orchestrator.StateSubmitted || got.Version != 1 {
		t.Fatalf("failed UpdateJob changed the job to %s v%d", got.State, got.Version)
	}
	pending1, _ := s.PendingOutbox(ctx(t), 1000)
	if len(pending1) != len(pending0) {
		t.Fatalf("failed UpdateJob changed the outbox from %d to %d records", len(pending0), len(pending1))
	}
}

func testOutbox(t *testing.T, s orchestrator.Store) {
	var ids []string
	for i := 0; i < 3; i++ {
		j := NewJob("alice", time.Duration(i)*time.Second)
		mustCreate(t, s, j)
		update(t, s, j, orchestrator.StateQueued, events.JobQueued)
		evs, _ := s.JobEvents(ctx(t), j.ID, 0)
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
	}
	recs, err := s.PendingOutbox(ctx(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(ids) {
		t.Fatalf("outbox has %d records, want %d", len(recs), len(ids))
	}
	for i, r := range recs {
		if r.Event.ID != ids[i] {
			t.Fatalf("outbox record %d is event %s, want %s (write order)", i, r.Event.ID, ids[i])
		}
		if r.Topic == "" {
			t.Fatalf("outbox record %d has no topic", i)
		}
		if i > 0 && r.ID <= recs[i-1].ID {
			t.Fatalf("outbox ids not increasing: %d after %d", r.ID, recs[i-1].ID)
		}
	}
	head, _ := s.PendingOutbox(ctx(t), 2)
	if len(head) != 2 || head[0].ID != recs[0].ID {
		t.Fatalf("PendingOutbox(2) = %d records, want the first 2", len(head))
	}
	if err := s.MarkPublished(ctx(t), []int64{recs[0].ID, recs[2].ID}); err != nil {
		t.Fatal(err)
	}
	rest, _ := s.PendingOutbox(ctx(t), 100)
	if len(rest) != len(recs)-2 || rest[0].ID != recs[1].ID || rest[1].ID != recs[3].ID {
		t.Fatalf("after marking 2 published, pending = %d records starting %d", len(rest), rest[0].ID)
	}
}

func testListPagination(t *testing.T, s orchestrator.Store) {
	const n = 23
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		// Groups of three share a creation time, to test the id tie-break.
		j := NewJob("alice", time.Duration(i/3)*time.Millisecond)
		mustCreate(t, s, j)
		want[j.ID] = true
	}
	seen := map[string]bool{}
	q := orchestrator.ListQuery{Limit: 5}
	var prev *orchestrator.Job
	pages := 0
	for {
		p, err := s.ListJobs(ctx(t), q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, j := range p.Jobs {
			if seen[j.ID] {
				t.Fatalf("job %s listed twice", j.ID)
			}
			seen[j.ID] = true
			if prev != nil && !orchestrator.Before(j.CreatedAt, j.ID, prev.CreatedAt, prev.ID) {
				t.Fatalf("jobs not newest first: %v/%s after %v/%s", j.CreatedAt, j.ID, prev.CreatedAt, prev.ID)
			}
			prev = j
		}
		if p.NextCursor == "" {
			break
		}
		if len(p.Jobs) != 5 {
			t.Fatalf("a non-final page holds %d jobs, want 5", len(p.Jobs))
		}
		// A job added meanwhile (newer) must not disturb the walk.
		if pages == 2 {
			mustCreate(t, s, NewJob("alice", time.Hour))
		}
		q.Cursor = p.NextCursor
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != n || pages != 5 {
		t.Fatalf("walked %d jobs in %d pages, want %d in 5", len(seen), pages, n)
	}
	for id := range want {
		if !seen[id] {
			t.Fatalf("job %s never listed", id)
		}
	}
	_, err := s.ListJobs(ctx(t), orchestrator.ListQuery{Cursor: "not-a-cursor"})
	var fe *orchestrator.FieldError
	if !errors.As(err, &fe) || fe.Field != "cursor" {
		t.Fatalf("bad cursor: err = %v, want a FieldError on cursor", err)
	}
	_, err = s.ListJobs(ctx(t), orchestrator.ListQuery{Limit: 5000})
	if !errors.As(err, &fe) || fe.Field != "limit" {
		t.Fatalf("limit 5000: err = %v, want a FieldError on limit", err)
	}
}

func testListFilters(t *testing.T, s orchestrator.Store) {
	for i := 0; i < 4; i++ {
		j := NewJob("alice", time.Duration(i)*time.Second)
		mustCreate(t, s, j)
		if i%2 == 0 {
			update(t, s, j, orchestrator.StateQueued, events.JobQueued)
		}
	}
	b := NewJob("bob", 10*time.Second)
	b.WorkflowID = "wf-9"
	mustCreate(t, s, b)
	cases := []struct {
		q    orchestrator.ListQuery
		want int
	}{
		{orchestrator.ListQuery{}, 5},
		{orchestrator.ListQuery{Owner: "alice"}, 4},
		{orchestrator.ListQuery{Owner: "bob"}, 1},
		{orchestrator.ListQuery{Owner: "carol"}, 0},
		{orchestrator.ListQuery{States: []orchestrator.State{orchestrator.StateQueued}}, 2},
		{orchestrator.ListQuery{Owner: "alice", States: []orchestrator.State{orchestrator.StateSubmitted}}, 2},
		{orchestrator.ListQuery{States: []orchestrator.State{orchestrator.StateSubmitted, orchestrator.StateQueued}}, 5},
		{orchestrator.ListQuery{WorkflowID: "wf-9"}, 1},
	}
	for i, c := range cases {
		p, err := s.ListJobs(ctx(t), c.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Jobs) != c.want {
			t.Errorf("case %d %+v: %d jobs, want %d", i, c.q, len(p.Jobs), c.want)
		}
		for _, j := range p.Jobs {
			if c.q.Owner != "" && j.Owner != c.q.Owner {
				t.Errorf("case %d: job of %s listed for owner %s", i, j.Owner, c.q.Owner)
			}
		}
		cnt, err := s.CountJobs(ctx(t), c.q.Owner, c.q.States)
		if err != nil {
			t.Fatal(err)
		}
		if c.q.WorkflowID == "" && cnt != c.want {
			t.Errorf("case %d: CountJobs = %d, want %d", i, cnt, c.want)
		}
	}
}

func testConcurrentUpdates(t *testing.T, s orchestrator.Store) {
	j := NewJob("alice", 0)
	mustCreate(t, s, j)
	const writers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n := j.Clone()
			n.State = orchestrator.StateQueued
			n.Version = 2
			n.Error = fmt.Sprint("writer ", i)
			err := s.UpdateJob(ctx(t), n, 1, []events.Event{Event(t, n, events.JobQueued)})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, orchestrator.ErrConflict) {
				t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent writers of version 2 succeeded, want exactly 1", wins)
	}
	evs, _ := s.JobEvents(ctx(t), j.ID, 0)
	if len(evs) != 2 {
		t.Fatalf("%d events after the race, want 2", len(evs))
	}
}

// testLeasesAndProvenance checks that the lease, the submitted spec, the
// agent version and the attempt log round-trip, and that RenewLeases moves
// the expiry of exactly the holder's live jobs without a version change.
func testLeasesAndProvenance(t *testing.T, s orchestrator.Store) {
	t0 := base.Add(time.Hour)
	mine := NewJob("alice", 0)
	mine.SubmittedSpec = json.RawMessage(`{"agent":"alphacal","dataset_id":"vlass/VLASS2.1/T10t01","gpus":2}`)
	mine.AgentVersion = "alphacal@sha256:0123456789ab"
	mine.LeaseHolder = "replica-a"
	mine.LeaseExpiresAt = t0
	mine.AttemptLog = []orchestrator.Attempt{
		{Number: 1, TaskID: mine.ID + "-1", Backend: "simgpu", ExternalID: "x-1", Replica: "replica-a", ClaimedAt: base, StartedAt: base.Add(time.Second), EndedAt: base.Add(time.Minute), Outcome: orchestrator.StateFailed, Reason: "node lost"},
		{Number: 2, TaskID: mine.ID + "-2", Backend: "simgpu", Replica: "replica-a", ClaimedAt: base.Add(2 * time.Minute)},
	}
	mustCreate(t, s, mine)
	got, err := s.GetJob(ctx(t), mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	equalJobs(t, got, mine)

	other := NewJob("alice", time.Second)
	other.LeaseHolder = "replica-b"
	other.LeaseExpiresAt = t0
	mustCreate(t, s, other)
	done := NewJob("alice", 2*time.Second)
	done.LeaseHolder = "replica-a"
	done.LeaseExpiresAt = t0
	done.State = orchestrator.StateCompleted
	mustCreate(t, s, done)

	t1 := t0.Add(30 * time.Second)
	n, err := s.RenewLeases(ctx(t), "replica-a", t1)
	if err != nil || n != 1 {
		t.Fatalf("RenewLeases = %d, %v; want 1 (only the live job of replica-a)", n, err)
	}
	got, _ = s.GetJob(ctx(t), mine.ID)
	if !got.LeaseExpiresAt.Equal(t1) || got.Version != mine.Version {
		t.Fatalf("after renew: lease expires %v version %d; want %v and unchanged version %d", got.LeaseExpiresAt, got.Version, t1, mine.Version)
	}
	for _, j := range []*orchestrator.Job{other, done} {
		g, _ := s.GetJob(ctx(t), j.ID)
		if !g.LeaseExpiresAt.Equal(t0) {
			t.Fatalf("job %s (holder %s, state %s) was renewed to %v", j.ID, j.LeaseHolder, j.State, g.LeaseExpiresAt)
		}
	}
	if n, err := s.RenewLeases(ctx(t), "", t1); err != nil || n != 0 {
		t.Fatalf("RenewLeases(empty holder) = %d, %v; want 0", n, err)
	}
}

// testConcurrentClaim has many goroutines try to take the same job's lease
// with UpdateJob from the same version: exactly one may win.
func testConcurrentClaim(t *testing.T, s orchestrator.Store) {
	j := mustCreate(t, s, NewJob("alice", 0))
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := j.Clone()
			c.LeaseHolder = fmt.Sprintf("replica-%d", i)
			c.LeaseExpiresAt = base.Add(time.Minute)
			c.Version = j.Version + 1
			err := s.UpdateJob(ctx(t), c, j.Version, nil)
			if err == nil {
				mu.Lock()
				wins = append(wins, c.LeaseHolder)
				mu.Unlock()
			} else if !errors.Is(err, orchestrator.ErrConflict) {
				t.Errorf("claim %d: %v, want nil or ErrConflict", i, err)
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d claims won (%v), want exactly 1", len(wins), wins)
	}
	got, _ := s.GetJob(ctx(t), j.ID)
	if got.LeaseHolder != wins[0] {
		t.Fatalf("stored holder %q, winner %q", got.LeaseHolder, wins[0])
	}
}

func queued(t *testing.T, s orchestrator.Store, owner string, offset time.Duration, mutate func(*orchestrator.Job)) *orchestrator.Job {
	t.Helper()
	j := NewJob(owner, offset)
	j.State = orchestrator.StateQueued
	if mutate != nil {
		mutate(j)
	}
	return mustCreate(t, s, j)
}

// testClaimReady checks which jobs ClaimReady hands out, in which order,
// and that a live reservation of another holder is respected until it
// expires or is released.
func testClaimReady(t *testing.T, s orchestrator.Store) {
	now := base.Add(time.Hour)
	old := queued(t, s, "alice", 0, nil)
	urgent := queued(t, s, "bob", 2*time.Second, func(j *orchestrator.Job) { j.Priority = 50 })
	young := queued(t, s, "alice", 3*time.Second, nil)
	queued(t, s, "alice", 4*time.Second, func(j *orchestrator.Job) { j.Backend, j.ExternalID = "sim", "x-1" }) // placed
	queued(t, s, "alice", 5*time.Second, func(j *orchestrator.Job) { j.NextAttemptAt = now.Add(time.Minute) }) // backing off
	queued(t, s, "alice", 6*time.Second, func(j *orchestrator.Job) { j.LeaseHolder, j.LeaseExpiresAt = "r2", now.Add(time.Minute) })
	expired := queued(t, s, "alice", 7*time.Second, func(j *orchestrator.Job) { j.LeaseHolder, j.LeaseExpiresAt = "r2", now.Add(-time.Second) })
	mustCreate(t, s, NewJob("alice", 8*time.Second)) // SUBMITTED, not QUEUED
	skipped := queued(t, s, "carol", 9*time.Second, nil)

	got, err := s.ClaimReady(ctx(t), "r1", now, now.Add(30*time.Second), 10, []string{"carol"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range got {
		ids = append(ids, j.ID)
		if j.LeaseHolder != "r1" || !j.LeaseExpiresAt.Equal(now.Add(30*time.Second)) {
			t.Fatalf("claimed job %s has lease %q until %v", j.ID, j.LeaseHolder, j.LeaseExpiresAt)
		}
	}
	want := []string{urgent.ID, old.ID, young.ID, expired.ID}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("ClaimReady = %v, want %v (priority, then age; placed, backing-off, live-reserved, submitted and skipped owners' jobs left out)", ids, want)
	}
	stored, _ := s.GetJob(ctx(t), old.ID)
	if stored.LeaseHolder != "r1" || stored.Version != old.Version {
		t.Fatalf("stored reservation %q version %d; want r1 and unchanged version %d", stored.LeaseHolder, stored.Version, old.Version)
	}
	// Reserved by r1: r2 gets nothing of these until r1 releases them.
	if got, _ := s.ClaimReady(ctx(t), "r2", now, now.Add(time.Minute), 10, []string{"carol"}); len(got) != 1 {
		t.Fatalf("r2 claimed %d jobs while r1 holds the ready ones, want only its own reservation back", len(got))
	}
	if err := s.ReleaseUnplaced(ctx(t), "r1"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ClaimReady(ctx(t), "r3", now, now.Add(time.Minute), 2, nil)
	if len(got) != 2 || got[0].ID != urgent.ID || got[1].ID != old.ID {
		t.Fatalf("after release, ClaimReady(limit 2) = %d jobs, want the two first", len(got))
	}
	got, _ = s.ClaimReady(ctx(t), "r4", now, now.Add(time.Minute), 10, nil)
	found := false
	for _, j := range got {
		found = found || j.ID == skipped.ID
	}
	if !found {
		t.Fatal("a job of an owner not skipped this time was not claimed")
	}
}

// testClaimReadyConcurrent has several holders claim at once: every ready
// job goes to exactly one.
func testClaimReadyConcurrent(t *testing.T, s orchestrator.Store) {
	const jobs, holders = 60, 6
	for i := range jobs {
		queued(t, s, "alice", time.Duration(i)*time.Millisecond, nil)
	}
	now := base.Add(time.Hour)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got = map[string]string{}
	)
	for h := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("r%d", h)
			for {
				js, err := s.ClaimReady(ctx(t), holder, now, now.Add(time.Minute), 7, nil)
				if err != nil {
					t.Errorf("%s: %v", holder, err)
					return
				}
				if len(js) == 0 {
					return
				}
				mu.Lock()
				for _, j := range js {
					if prev, dup := got[j.ID]; dup {
						t.Errorf("job %s claimed by %s and %s", j.ID, prev, holder)
					}
					got[j.ID] = holder
				}
				mu.Unlock()
				// Place them, as a scheduler would: a version-checked
				// write that must not conflict.
				for _, j := range js {
					c := j.Clone()
					c.Backend, c.Version = "sim", j.Version+1
					if err := s.UpdateJob(ctx(t), c, j.Version, nil); err != nil {
						t.Errorf("%s: place claimed job %s: %v", holder, j.ID, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(got) != jobs {
		t.Fatalf("%d of %d jobs claimed", len(got), jobs)
	}
}

// testUsageAndFollowed checks PlacedUsage and FollowedJobs.
func testUsageAndFollowed(t *testing.T, s orchestrator.Store) {
	now := base.Add(time.Hour)
	place := func(owner, holder string, expires time.Time, gpus int, st orchestrator.State) *orchestrator.Job {
		return queued(t, s, owner, 0, func(j *orchestrator.Job) {
			j.State, j.Backend, j.ExternalID, j.GPUs = st, "sim", uuid.NewString(), gpus
			j.LeaseHolder, j.LeaseExpiresAt = holder, expires
		})
	}
	mine := place("alice", "r1", now.Add(time.Minute), 2, orchestrator.StateRunning)
	place("alice", "r2", now.Add(time.Minute), 4, orchestrator.StateQueued)
	orphan := place("bob", "r2", now.Add(-time.Second), 1, orchestrator.StateRunning)
	legacy := place("bob", "", time.Time{}, 1, orchestrator.StateRunning)
	queued(t, s, "carol", 0, nil) // not placed
	place("dave", "r1", now.Add(time.Minute), 8, orchestrator.StateCompleted)

	u, err := s.PlacedUsage(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]orchestrator.Usage{"alice": {Jobs: 2, GPUs: 6}, "bob": {Jobs: 2, GPUs: 2}}
	if fmt.Sprint(u) != fmt.Sprint(want) {
		t.Fatalf("PlacedUsage = %v, want %v", u, want)
	}
	f, err := s.FollowedJobs(ctx(t), "r1", now)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, j := range f {
		ids[j.ID] = true
	}
	if len(f) != 3 || !ids[mine.ID] || !ids[orphan.ID] || !ids[legacy.ID] {
		t.Fatalf("FollowedJobs(r1) = %d jobs; want its own, the expired and the unleased placed job", len(f))
	}
}
