package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/internal/pgtest"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
)

// killable is a store a test can cut off, as if the replica's process died
// or lost the database: every call after kill fails. Calls hold gate's read
// lock, so kill can wait for the calls in flight and then look at what the
// replica holds, knowing it will write nothing more.
type killable struct {
	orchestrator.Store
	gate sync.RWMutex
	dead atomic.Bool
}

// enter admits one store call; the caller runs the returned release when
// the call is done.
func (k *killable) enter() (release func(), err error) {
	k.gate.RLock()
	if k.dead.Load() {
		k.gate.RUnlock()
		return nil, errKilled
	}
	return k.gate.RUnlock, nil
}

// killIf stops every store call, and once none is in flight calls decide;
// if decide returns true the replica is dead from then on, otherwise it
// goes on as if nothing happened.
func (k *killable) killIf(decide func() bool) bool {
	k.gate.Lock()
	defer k.gate.Unlock()
	if decide() {
		k.dead.Store(true)
	}
	return k.dead.Load()
}

func (k *killable) ClaimReady(ctx context.Context, holder string, now, until time.Time, limit int, skipOwners []string) ([]*orchestrator.Job, error) {
	release, err := k.enter()
	if err != nil {
		return nil, err
	}
	defer release()
	return k.Store.ClaimReady(ctx, holder, now, until, limit, skipOwners)
}

var errKilled = errors.New("replica killed by the test")

func (k *killable) CreateJob(ctx context.Context, j *orchestrator.Job, evs []events.Event) (*orchestrator.Job, bool, error) {
	release, err := k.enter()
	if err != nil {
		return nil, false, err
	}
	defer release()
	return k.Store.CreateJob(ctx, j, evs)
}
func (k *killable) GetJob(ctx context.Context, id string) (*orchestrator.Job, error) {
	release, err := k.enter()
	if err != nil {
		return nil, err
	}
	defer release()
	return k.Store.GetJob(ctx, id)
}
func (k *killable) ListJobs(ctx context.Context, q orchestrator.ListQuery) (orchestrator.Page, error) {
	release, err := k.enter()
	if err != nil {
		return orchestrator.Page{}, err
	}
	defer release()
	return k.Store.ListJobs(ctx, q)
}
func (k *killable) UpdateJob(ctx context.Context, j *orchestrator.Job, prev int64, evs []events.Event) error {
	release, err := k.enter()
	if err != nil {
		return err
	}
	defer release()
	return k.Store.UpdateJob(ctx, j, prev, evs)
}
func (k *killable) RenewLeases(ctx context.Context, holder string, until time.Time) (int, error) {
	release, err := k.enter()
	if err != nil {
		return 0, err
	}
	defer release()
	return k.Store.RenewLeases(ctx, holder, until)
}
func (k *killable) PendingOutbox(ctx context.Context, limit int) ([]orchestrator.OutboxRecord, error) {
	release, err := k.enter()
	if err != nil {
		return nil, err
	}
	defer release()
	return k.Store.PendingOutbox(ctx, limit)
}

// TestReplicasShareWorkOnPostgres runs two orchestrators on one PostgreSQL
// schema and one shared simulated cluster (fast manual clock, 5% injected
// failures), submits jobs through both, kills one replica part-way (its
// store calls fail from then on, so it can neither heartbeat nor release
// its leases), and proves from the stored history that every job ended
// exactly once, that both replicas placed work, that the survivor took the
// dead replica's jobs over, and that no job ever had two attempts at once.
func TestReplicasShareWorkOnPostgres(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	dsn, _ := pgtest.Schema(t, "orch_replicas")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	clock := simgpu.NewManualClock(time.Now())
	stopClock := make(chan struct{})
	var clockWG sync.WaitGroup
	clockWG.Add(1)
	go func() {
		defer clockWG.Done()
		for {
			select {
			case <-stopClock:
				return
			case <-time.After(time.Millisecond):
				clock.Advance(20 * time.Second)
			}
		}
	}()
	defer func() { close(stopClock); clockWG.Wait() }()
	gpu, err := simgpu.Open(&simgpu.Config{Nodes: 16, GPUsPerNode: 8, Clock: clock, FailureRate: 0.05, Seed: 7,
		DatasetGB: func(string) float64 { return 2 }, Logger: quiet()}, &backends.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	bus := newBus(t)

	type replica struct {
		o     *orchestrator.Orchestrator
		store *killable
	}
	var reps []*replica
	for _, id := range []string{"replica-a", "replica-b"} {
		s, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "pgx", DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		s.DB().SetMaxOpenConns(4)
		ks := &killable{Store: s}
		o, err := orchestrator.New(ks, bus, &orchestrator.Config{
			Backends: []*backends.Backend{gpu}, Logger: testLogger(id), ReplicaID: id,
			PollInterval: 20 * time.Millisecond, ScheduleInterval: 20 * time.Millisecond, OutboxInterval: 50 * time.Millisecond,
			LeaseTTL: 600 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond,
			Retry: orchestrator.RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Start(ctx); err != nil {
			t.Fatal(err)
		}
		reps = append(reps, &replica{o: o, store: ks})
		t.Cleanup(func() {
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			o.Stop(sctx)
			s.Close()
		})
	}

	reader := reps[1].store.Store
	terminal := func() int {
		c, err := reader.CountJobs(ctx, "", []orchestrator.State{orchestrator.StateCompleted, orchestrator.StateFailed, orchestrator.StateCancelled})
		if err != nil {
			t.Error(err)
		}
		return c
	}
	// Kill replica a once a fifth of the jobs are done, while submissions
	// go on (through b from then on).
	var (
		heldByA  int
		killedAt time.Time
		killed   = make(chan struct{})
	)
	var heldIDs map[string]bool
	go func() {
		defer close(killed)
		// Once a fifth of the jobs are done, kill replica a at a moment
		// when, with none of its store calls in flight, it holds placed
		// jobs: from then on only b can finish them.
		for ctx.Err() == nil && terminal() < n {
			if terminal() >= n/5 {
				var held []*orchestrator.Job
				dead := reps[0].store.killIf(func() bool {
					var err error
					if held, err = reader.FollowedJobs(ctx, "replica-a", time.Time{}); err != nil {
						t.Error(err)
					}
					return len(held) > 0
				})
				if dead {
					killedAt = time.Now()
					heldIDs = map[string]bool{}
					for _, j := range held {
						heldIDs[j.ID] = true
					}
					heldByA = len(held)
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// Submit through both replicas at once.
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				s := spec()
				s.GPUs = i % 2 // half on GPUs, half on host CPUs
				s.DatasetID = fmt.Sprintf("vlass/T%04d", i)
				s.IdempotencyKey = fmt.Sprintf("k-%d", i)
				r := reps[i%2]
				if r.store.dead.Load() {
					r = reps[1]
				}
				j, _, err := r.o.Submit(ctx, fmt.Sprintf("user-%d", i%5), s)
				if errors.Is(err, errKilled) {
					j, _, err = reps[1].o.Submit(ctx, fmt.Sprintf("user-%d", i%5), s)
				}
				if err != nil {
					errs <- fmt.Errorf("submit %d: %w", i, err)
					return
				}
				ids[i] = j.ID
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	<-killed
	deadline := time.Now().Add(2 * time.Minute)
	for terminal() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := terminal(); got != n {
		t.Fatalf("%d of %d jobs finished before the deadline", got, n)
	}
	t.Logf("%d jobs done; replica a killed holding %d placed jobs; finished %.1fs after the kill", n, heldByA, time.Since(killedAt).Seconds())

	placedBy := map[string]int{}
	var completed, failed, takenOver int
	for _, id := range ids {
		j, err := reader.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := reader.JobEvents(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ends, runs, fails int
		for i, e := range evs {
			if e.Sequence != int64(i+1) {
				t.Fatalf("job %s: event %d has sequence %d (lost or duplicated event)", id, i, e.Sequence)
			}
			switch e.Type {
			case events.JobCompleted, events.JobCancelled:
				ends++
			case events.JobRunning:
				// A new run may start only after the previous one failed.
				if runs > fails {
					t.Fatalf("job %s: job.running while attempt %d was still running (events %v)", id, runs, types(evs))
				}
				runs++
			case events.JobFailed:
				fails++
			}
		}
		switch j.State {
		case orchestrator.StateCompleted:
			completed++
			if ends != 1 {
				t.Fatalf("job %s completed with %d final events", id, ends)
			}
		case orchestrator.StateFailed:
			failed++
			t.Logf("job %s failed: %s; attempts %+v", id, j.Error, j.AttemptLog)
			if ends != 0 || fails != j.Attempts {
				t.Fatalf("job %s failed with %d completed events and %d failures for %d attempts", id, ends, fails, j.Attempts)
			}
		default:
			t.Fatalf("job %s ended %s", id, j.State)
		}
		if len(j.AttemptLog) != j.Attempts {
			t.Fatalf("job %s: %d attempts but %d in the log", id, j.Attempts, len(j.AttemptLog))
		}
		log := append([]orchestrator.Attempt(nil), j.AttemptLog...)
		sort.Slice(log, func(a, b int) bool { return log[a].Number < log[b].Number })
		for k, a := range log {
			placedBy[a.Replica]++
			if a.Number != k+1 || a.TaskID != orchestrator.TaskID(id, k+1) || a.Outcome == "" || a.EndedAt.IsZero() {
				t.Fatalf("job %s: attempt %+v", id, a)
			}
			if k > 0 && a.ClaimedAt.Before(log[k-1].EndedAt) {
				t.Fatalf("job %s: attempt %d claimed at %v before attempt %d ended at %v", id, a.Number, a.ClaimedAt, k, log[k-1].EndedAt)
			}
		}
		// A job replica a held placed when it died, now finished with
		// every attempt closed: only replica b can have done that.
		if heldIDs[id] && len(log) > 0 {
			takenOver++
		}
	}
	t.Logf("completed %d, failed after retries %d, attempts placed by %v, held jobs of replica a finished by b %d", completed, failed, placedBy, takenOver)
	if placedBy["replica-a"] == 0 || placedBy["replica-b"] == 0 {
		t.Fatalf("attempts placed per replica %v; both must share the work", placedBy)
	}
	if heldByA == 0 || takenOver != heldByA {
		t.Fatalf("replica a held %d placed jobs when killed and b finished %d of them; the takeover was not exercised in full", heldByA, takenOver)
	}
	if completed < n*8/10 {
		t.Fatalf("only %d of %d jobs completed (5%% failure rate, 4 attempts)", completed, n)
	}
}

func testLogger(id string) *slog.Logger {
	if os.Getenv("ORCH_DEBUG") == "" || id != "replica-b" {
		return quiet()
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
