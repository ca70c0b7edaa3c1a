package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
)

// A replayed idempotency key returns the first job even when the queue is
// full; a new submission still gets ErrResourceExhausted.
func TestIdempotentReplayWhenQueueFull(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 0), func(c *orchestrator.Config) { c.MaxQueued = 1 })
	ctx := context.Background()
	s := spec()
	s.IdempotencyKey = "nightly-42"
	first, created, err := r.o.Submit(ctx, "alice", s)
	if err != nil || !created {
		t.Fatalf("first Submit = %v, %v", created, err)
	}
	again, created, err := r.o.Submit(ctx, "alice", s)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("replay with a full queue = %v, %v, %v; want job %s, false, nil", again, created, err, first.ID)
	}
	s.IdempotencyKey = "nightly-43"
	if _, _, err := r.o.Submit(ctx, "alice", s); !errors.Is(err, orchestrator.ErrResourceExhausted) {
		t.Fatalf("new key with a full queue = %v, want ErrResourceExhausted", err)
	}
}

// The placement is recorded before the backend sees the task. A replica
// that died after submitting but before storing the handle leaves a claimed
// attempt; the next replica takes the expired lease over and submits the
// same task id again, which re-attaches to the task instead of starting a
// second one.
func TestOrphanedSubmitIsReattached(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(nil)
	be := newScripted("fake", 4)
	// The state the dead replica left: claim stored, task submitted, handle
	// not stored.
	j := &orchestrator.Job{
		ID: "job-orphan", Owner: "alice", Agent: "alphacal", DatasetID: "vlass/T01", GPUs: 1,
		WallTime: time.Hour, State: orchestrator.StateSubmitted, CorrelationID: "c", Version: 1,
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	if _, _, err := store.CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	n := j.Clone()
	n.State = orchestrator.StateQueued
	n.Backend, n.Attempts = "fake", 1
	n.LeaseHolder, n.LeaseExpiresAt = "dead-replica", time.Now().Add(-time.Second)
	n.AttemptLog = []orchestrator.Attempt{{Number: 1, TaskID: "job-orphan-1", Backend: "fake", Replica: "dead-replica", ClaimedAt: time.Now()}}
	n.Version = 2
	if err := store.UpdateJob(ctx, n, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Submit(ctx, backends.Task{ID: "job-orphan-1", Agent: "alphacal", DatasetID: "vlass/T01", GPUs: 1}); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, store, be, nil)
	waitFor(t, "handle recorded", func() bool {
		g, _ := r.o.Get(ctx, j.ID)
		return g.ExternalID != ""
	})
	if got := be.submitted(); got != 1 {
		t.Fatalf("backend holds %d tasks, want the one orphaned task re-attached", got)
	}
	be.set(0, backends.Status{State: backends.TaskCompleted, Progress: 100})
	done := r.waitState(t, j.ID, orchestrator.StateCompleted)
	if done.Attempts != 1 || len(done.AttemptLog) != 1 || done.AttemptLog[0].Replica != "dead-replica" || done.AttemptLog[0].ExternalID != "fake-1" || done.AttemptLog[0].Outcome != orchestrator.StateCompleted {
		t.Fatalf("after re-attach: attempts %d log %+v", done.Attempts, done.AttemptLog)
	}
}

// A job whose holder's lease is still live is left alone by other replicas.
func TestLiveLeaseIsRespected(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(nil)
	be := newScripted("fake", 4)
	j := &orchestrator.Job{
		ID: "job-held", Owner: "alice", Agent: "alphacal", DatasetID: "vlass/T01", GPUs: 1,
		State: orchestrator.StateQueued, CorrelationID: "c", Version: 1, Backend: "fake", Attempts: 1,
		LeaseHolder: "other-replica", LeaseExpiresAt: time.Now().Add(time.Hour),
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	if _, _, err := store.CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, store, be, nil)
	time.Sleep(100 * time.Millisecond) // many poll rounds at 5ms
	g, _ := r.o.Get(ctx, j.ID)
	if g.LeaseHolder != "other-replica" || g.Version != 1 || be.submitted() != 0 {
		t.Fatalf("a live lease was not respected: holder %q version %d backend tasks %d", g.LeaseHolder, g.Version, be.submitted())
	}
}

// Per-owner quotas: an owner at MaxRunning waits while others run; a spec
// over the owner's GPU quota is rejected naming the field and the owner.
func TestQuotas(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 8), func(c *orchestrator.Config) {
		c.Quotas = orchestrator.Quotas{
			Default: orchestrator.Quota{MaxRunning: 2, MaxGPUs: 4},
			Users:   map[string]orchestrator.Quota{"bob": {MaxRunning: 1}},
		}
	})
	ctx := context.Background()
	var alice []*orchestrator.Job
	for range 4 {
		j, _, err := r.o.Submit(ctx, "alice", spec())
		if err != nil {
			t.Fatal(err)
		}
		alice = append(alice, j)
	}
	for range 2 {
		if _, _, err := r.o.Submit(ctx, "bob", spec()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "placements", func() bool { return r.be.submitted() == 3 })
	time.Sleep(50 * time.Millisecond)
	placed := map[string]int{}
	for _, o := range []string{"alice", "bob"} {
		p, _ := r.o.List(ctx, orchestrator.ListQuery{Owner: o})
		for _, j := range p.Jobs {
			if j.Backend != "" {
				placed[o]++
			}
		}
	}
	if placed["alice"] != 2 || placed["bob"] != 1 || r.be.submitted() != 3 {
		t.Fatalf("placed %v (backend %d tasks); want alice 2 (default MaxRunning) and bob 1 (override)", placed, r.be.submitted())
	}
	// Finishing one of alice's jobs lets the next one in.
	r.be.mu.Lock()
	var first int
	for i, ext := range r.be.order {
		if strings.HasPrefix(r.be.byTask[ext], alice[0].ID) || strings.HasPrefix(r.be.byTask[ext], alice[1].ID) {
			first = i
			break
		}
	}
	r.be.mu.Unlock()
	r.be.set(first, backends.Status{State: backends.TaskCompleted, Progress: 100})
	waitFor(t, "alice's third job placed", func() bool { return r.be.submitted() == 4 })

	s := spec()
	s.GPUs = 6
	_, _, err := r.o.Submit(ctx, "carol", s)
	var fe *orchestrator.FieldError
	if !errors.As(err, &fe) || fe.Field != "gpus" || !strings.Contains(err.Error(), `"carol"`) || !strings.Contains(err.Error(), "4 GPUs") {
		t.Fatalf("over-quota Submit = %v; want a FieldError on gpus naming carol and the quota", err)
	}
	if _, err := orchestrator.New(r.store, r.bus, &orchestrator.Config{Backends: r.o.Backends(), Quotas: orchestrator.Quotas{Users: map[string]orchestrator.Quota{"dave": {MaxGPUs: -1}}}}); err == nil || !strings.Contains(err.Error(), "dave") {
		t.Fatalf("New with a negative quota = %v; want an error naming dave", err)
	}
}

// Fair share: with one free slot at a time, two owners alternate even
// though one submitted all its jobs first.
func TestFairShare(t *testing.T) {
	be := newScripted("fake", 0)
	r := newRig(t, memstore.New(nil), be, nil)
	ctx := context.Background()
	owner := map[string]string{}
	for range 4 {
		j, _, _ := r.o.Submit(ctx, "alice", spec())
		owner[j.ID] = "alice"
	}
	for range 2 {
		j, _, _ := r.o.Submit(ctx, "bob", spec())
		owner[j.ID] = "bob"
	}
	var seq []string
	for i := range 4 {
		be.mu.Lock()
		be.slots++
		be.mu.Unlock()
		waitFor(t, "placement", func() bool { return be.submitted() == i+1 })
		be.mu.Lock()
		ext := be.order[i]
		seq = append(seq, owner[strings.TrimSuffix(be.byTask[ext], "-1")])
		be.mu.Unlock()
	}
	// Slot 1 goes to the oldest job (alice); then bob, who runs nothing;
	// then alice and bob alternate by running count.
	if strings.Join(seq, ",") != "alice,bob,alice,bob" {
		t.Fatalf("placement order %v; want alice,bob,alice,bob", seq)
	}
}

// Placement: a job goes only to a backend whose capabilities fit it, and
// among those to the one with the most free GPUs.
func TestPlacementByCapabilityAndCapacity(t *testing.T) {
	small := newScripted("small", 8)
	small.maxGPUs = 2
	big := newScripted("big", 8)
	r := newRig(t, memstore.New(nil), small, func(c *orchestrator.Config) {
		c.Backends = []*backends.Backend{backends.New(small, nil), backends.New(&gpuLimited{scripted: big, free: 16}, nil)}
	})
	ctx := context.Background()
	s := spec()
	s.GPUs = 4
	wide, _, err := r.o.Submit(ctx, "alice", s)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "wide placed", func() bool { g, _ := r.o.Get(ctx, wide.ID); return g.ExternalID != "" })
	if g, _ := r.o.Get(ctx, wide.ID); g.Backend != "big" {
		t.Fatalf("4-GPU job placed on %s; only big can run it", g.Backend)
	}
	// small reports 64 free GPUs, big 16: a 1-GPU job goes to small.
	narrow, _, _ := r.o.Submit(ctx, "alice", spec())
	waitFor(t, "narrow placed", func() bool { g, _ := r.o.Get(ctx, narrow.ID); return g.ExternalID != "" })
	if g, _ := r.o.Get(ctx, narrow.ID); g.Backend != "small" {
		t.Fatalf("1-GPU job placed on %s; want small, which has more free GPUs", g.Backend)
	}
	s.GPUs = 16
	if _, _, err := r.o.Submit(ctx, "alice", s); err == nil {
		t.Fatal("a 16-GPU job was accepted; no backend allows more than 8")
	}
}

// gpuLimited reports a fixed number of free GPUs.
type gpuLimited struct {
	*scripted
	free int
}

func (g *gpuLimited) Capacity(ctx context.Context) (backends.Capacity, error) {
	c, err := g.scripted.Capacity(ctx)
	c.FreeGPUs = g.free
	return c, err
}

// Provenance records who submitted what, the agent version, every attempt
// with its backend task and outcome, and the outputs.
func TestProvenance(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 4), nil)
	ctx := context.Background()
	s := spec()
	s.Priority = 7
	j, _, err := r.o.Submit(ctx, "alice", s)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first placement", func() bool { return r.be.submitted() == 1 })
	r.be.set(0, backends.Status{State: backends.TaskRunning, Progress: 10})
	r.waitState(t, j.ID, orchestrator.StateRunning)
	r.be.set(0, backends.Status{State: backends.TaskFailed, Message: "node lost"})
	waitFor(t, "retry placement", func() bool { return r.be.submitted() == 2 })
	r.be.set(1, backends.Status{State: backends.TaskCompleted, Progress: 100, Result: json.RawMessage(`{"flagged_fraction":0.07}`)})
	r.waitState(t, j.ID, orchestrator.StateCompleted)

	p, err := r.o.Provenance(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	var gotSpec orchestrator.Spec
	if err := json.Unmarshal(p.Spec, &gotSpec); err != nil || gotSpec.Agent != "AlphaCal" || gotSpec.Priority != 7 || string(gotSpec.Params) != `{"iterations":2}` {
		t.Fatalf("provenance spec = %s (%v); want the spec as submitted", p.Spec, err)
	}
	if p.SubmittedBy != "alice" || p.Agent != "alphacal" || !strings.HasPrefix(p.AgentVersion, "alphacal@sha256:") {
		t.Fatalf("provenance = %+v", p)
	}
	ac, _ := agents.NewRegistry().Lookup("alphacal")
	if p.AgentVersion != orchestrator.AgentVersion(ac.Descriptor()) {
		t.Fatalf("agent version %s does not match the registry's alphacal", p.AgentVersion)
	}
	if len(p.Attempts) != 2 {
		t.Fatalf("attempts = %+v, want 2", p.Attempts)
	}
	a1, a2 := p.Attempts[0], p.Attempts[1]
	if a1.Number != 1 || a1.TaskID != j.ID+"-1" || a1.ExternalID != "fake-1" || a1.Outcome != orchestrator.StateFailed || !strings.Contains(a1.Reason, "node lost") || a1.StartedAt.IsZero() || a1.EndedAt.IsZero() {
		t.Fatalf("attempt 1 = %+v", a1)
	}
	if a2.Number != 2 || a2.TaskID != j.ID+"-2" || a2.ExternalID != "fake-2" || a2.Outcome != orchestrator.StateCompleted || a2.Replica != r.o.ReplicaID() {
		t.Fatalf("attempt 2 = %+v", a2)
	}
	if string(p.Outputs) != `{"flagged_fraction":0.07}` || p.Backend != "fake" || p.ExternalID != "fake-2" || p.Events < 6 {
		t.Fatalf("provenance outputs %s backend %s/%s events %d", p.Outputs, p.Backend, p.ExternalID, p.Events)
	}
	if _, err := r.o.Provenance(ctx, "nope"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Fatalf("Provenance(unknown) = %v, want ErrNotFound", err)
	}
	// The events tell the same story.
	evs, _ := r.o.Events(ctx, j.ID)
	var failed int
	for _, e := range evs {
		if e.Type == events.JobFailed {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d job.failed events, want 1", failed)
	}
}
