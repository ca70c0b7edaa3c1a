package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
)

// scripted is a backend driver whose tasks move only when the test says so.
type scripted struct {
	mu        sync.Mutex
	name      string
	slots     int
	maxGPUs   int
	tasks     map[string]*backends.Status
	order     []string // external ids in submission order
	byTask    map[string]string
	cancelled map[string]bool
	n         int
}

func newScripted(name string, slots int) *scripted {
	return &scripted{name: name, slots: slots, maxGPUs: 8, tasks: map[string]*backends.Status{}, byTask: map[string]string{}, cancelled: map[string]bool{}}
}

func (s *scripted) Name() string { return s.name }
func (s *scripted) Capabilities(context.Context) (backends.Capabilities, error) {
	return backends.Capabilities{MaxGPUs: s.maxGPUs, MaxWallTime: 48 * time.Hour, Cancel: true, Recover: true}, nil
}
func (s *scripted) live() int {
	n := 0
	for _, st := range s.tasks {
		if !st.State.Terminal() {
			n++
		}
	}
	return n
}
func (s *scripted) Capacity(context.Context) (backends.Capacity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	free := s.slots - s.live()
	return backends.Capacity{TotalGPUs: 64, FreeGPUs: 64, FreeSlots: free}, nil
}
func (s *scripted) Submit(_ context.Context, t backends.Task) (backends.Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ext, id := range s.byTask {
		if id == t.ID { // de-duplicate by task id, as simgpu does
			return backends.Handle{Backend: s.name, ExternalID: ext}, nil
		}
	}
	if s.live() >= s.slots {
		return backends.Handle{}, backends.ErrNoCapacity
	}
	s.n++
	id := fmt.Sprintf("%s-%d", s.name, s.n)
	s.tasks[id] = &backends.Status{State: backends.TaskPending}
	s.order = append(s.order, id)
	s.byTask[id] = t.ID
	return backends.Handle{Backend: s.name, ExternalID: id}, nil
}
func (s *scripted) Status(_ context.Context, h backends.Handle) (backends.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.tasks[h.ExternalID]
	if !ok {
		return backends.Status{}, fmt.Errorf("%w: %s", backends.ErrTaskNotFound, h.ExternalID)
	}
	return *st, nil
}
func (s *scripted) Cancel(_ context.Context, h backends.Handle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.tasks[h.ExternalID]
	if !ok {
		return fmt.Errorf("%w: %s", backends.ErrTaskNotFound, h.ExternalID)
	}
	s.cancelled[h.ExternalID] = true
	if !st.State.Terminal() {
		st.State = backends.TaskCancelled
	}
	return nil
}
func (s *scripted) Recover(ctx context.Context, h backends.Handle) (backends.Status, error) {
	return s.Status(ctx, h)
}
func (s *scripted) Close() error { return nil }

// set changes the state of the i-th submitted task (0-based).
func (s *scripted) set(i int, st backends.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.tasks[s.order[i]] = st
}

func (s *scripted) submitted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order)
}

type rig struct {
	o     *orchestrator.Orchestrator
	store orchestrator.Store
	be    *scripted
	bus   *events.Bus
	got   chan events.Event
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newBus(t *testing.T) *events.Bus {
	gc := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	b := events.NewBus(gc, gc, nil)
	t.Cleanup(func() { b.Close() })
	return b
}

func newRig(t *testing.T, store orchestrator.Store, be *scripted, mutate func(*orchestrator.Config)) *rig {
	t.Helper()
	bus := newBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sub, err := bus.Subscribe(ctx, events.TopicJobs)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan events.Event, 1000)
	go func() {
		for d := range sub {
			got <- d.Event
			d.Ack()
		}
	}()
	cfg := &orchestrator.Config{
		Backends:         []*backends.Backend{backends.New(be, &backends.Options{Logger: quiet()})},
		Logger:           quiet(),
		PollInterval:     5 * time.Millisecond,
		ScheduleInterval: 5 * time.Millisecond,
		OutboxInterval:   20 * time.Millisecond,
		Retry:            orchestrator.RetryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
	}
	if mutate != nil {
		mutate(cfg)
	}
	o, err := orchestrator.New(store, bus, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		o.Stop(sctx)
	})
	return &rig{o: o, store: store, be: be, bus: bus, got: got}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (r *rig) waitState(t *testing.T, id string, st orchestrator.State) *orchestrator.Job {
	t.Helper()
	var j *orchestrator.Job
	waitFor(t, fmt.Sprintf("job %s to be %s", id, st), func() bool {
		var err error
		j, err = r.o.Get(context.Background(), id)
		return err == nil && j.State == st
	})
	return j
}

func spec() orchestrator.Spec {
	return orchestrator.Spec{Agent: "AlphaCal", DatasetID: "vlass/T01", GPUs: 1, Params: json.RawMessage(`{"iterations":2}`)}
}

func types(evs []events.Event) []events.Type {
	out := make([]events.Type, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func TestLifecycle(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 4), nil)
	ctx := context.Background()
	s := spec()
	s.CorrelationID = "corr-123"
	j, created, err := r.o.Submit(ctx, "alice", s)
	if err != nil || !created {
		t.Fatalf("Submit = %v, %v", created, err)
	}
	if j.State != orchestrator.StateQueued || j.Agent != "alphacal" {
		t.Fatalf("submitted job is %s/%s, want QUEUED/alphacal", j.State, j.Agent)
	}
	waitFor(t, "placement", func() bool { return r.be.submitted() == 1 })
	r.be.set(0, backends.Status{State: backends.TaskRunning, Progress: 5})
	r.waitState(t, j.ID, orchestrator.StateRunning)
	for _, p := range []float64{12, 15, 37, 99} {
		r.be.set(0, backends.Status{State: backends.TaskRunning, Progress: p})
		waitFor(t, fmt.Sprint("progress ", p), func() bool {
			g, _ := r.o.Get(ctx, j.ID)
			return g.Progress >= p-0.2
		})
	}
	r.be.set(0, backends.Status{State: backends.TaskCompleted, Progress: 100, Result: json.RawMessage(`{"flagged_fraction":0.04}`)})
	done := r.waitState(t, j.ID, orchestrator.StateCompleted)
	if done.Progress != 100 || string(done.Result) != `{"flagged_fraction":0.04}` || done.FinishedAt.IsZero() || done.StartedAt.IsZero() {
		t.Fatalf("completed job = %+v", done)
	}
	evs, err := r.o.Events(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []events.Type{events.JobSubmitted, events.JobQueued, events.JobRunning, events.JobProgress, events.JobProgress, events.JobProgress, events.JobCompleted}
	if fmt.Sprint(types(evs)) != fmt.Sprint(want) {
		t.Fatalf("events = %v, want %v (progress at 10, 30 and 90 %%)", types(evs), want)
	}
	for i, e := range evs {
		if e.Sequence != int64(i+1) || e.CorrelationID != "corr-123" || e.Subject != j.ID {
			t.Fatalf("event %d: seq %d corr %q subject %q", i, e.Sequence, e.CorrelationID, e.Subject)
		}
	}
	// The bus carries the same events in the same order.
	var bus []events.Event
	waitFor(t, "all events on the bus", func() bool {
		for {
			select {
			case e := <-r.got:
				bus = append(bus, e)
			default:
				return len(bus) >= len(evs)
			}
		}
	})
	for i := range evs {
		if bus[i].ID != evs[i].ID {
			t.Fatalf("bus event %d = %s, want %s", i, bus[i].Type, evs[i].Type)
		}
	}
	// The outbox is drained.
	waitFor(t, "outbox drained", func() bool {
		p, _ := r.store.PendingOutbox(ctx, 10)
		return len(p) == 0
	})
}

func TestSubmitValidation(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 4), nil)
	ctx := context.Background()
	cases := []struct {
		mutate func(*orchestrator.Spec)
		field  string
	}{
		{func(s *orchestrator.Spec) { s.Agent = "astrologer" }, "agent"},
		{func(s *orchestrator.Spec) { s.Agent = "" }, "agent"},
		{func(s *orchestrator.Spec) { s.DatasetID = "" }, "dataset_id"},
		{func(s *orchestrator.Spec) { s.DatasetID = "bad id with spaces" }, "dataset_id"},
		{func(s *orchestrator.Spec) { s.GPUs = -1 }, "gpus"},
		{func(s *orchestrator.Spec) { s.GPUs = 16 }, "gpus"}, // backend max is 8
		{func(s *orchestrator.Spec) { s.Priority = 1000 }, "priority"},
		{func(s *orchestrator.Spec) { s.Params = json.RawMessage(`{"iterations":0}`) }, "params.iterations"},
		{func(s *orchestrator.Spec) { s.Params = json.RawMessage(`{"colour":"red"}`) }, "params.colour"},
		{func(s *orchestrator.Spec) { s.Params = json.RawMessage(`[1,2]`) }, "params"},
	}
	for _, c := range cases {
		s := spec()
		c.mutate(&s)
		_, _, err := r.o.Submit(ctx, "alice", s)
		var fe *orchestrator.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, orchestrator.ErrInvalidSpec) {
			t.Errorf("%s: err = %v, want a FieldError", c.field, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("err names field %q, want %q (%v)", fe.Field, c.field, err)
		}
	}
	n, _ := r.store.CountJobs(ctx, "", nil)
	if n != 0 {
		t.Fatalf("%d jobs stored after invalid submissions", n)
	}
}

func TestIdempotentSubmit(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 4), nil)
	ctx := context.Background()
	s := spec()
	s.IdempotencyKey = "run-42"
	a, created, err := r.o.Submit(ctx, "alice", s)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	b, created, err := r.o.Submit(ctx, "alice", s)
	if err != nil || created || b.ID != a.ID {
		t.Fatalf("repeat: id %s created %v err %v; want %s false nil", b.ID, created, err, a.ID)
	}
	c, created, err := r.o.Submit(ctx, "bob", s)
	if err != nil || !created || c.ID == a.ID {
		t.Fatalf("other owner: created %v err %v", created, err)
	}
}

func TestCancel(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 4), nil)
	ctx := context.Background()
	j, _, err := r.o.Submit(ctx, "alice", spec())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "placement", func() bool { return r.be.submitted() == 1 })
	r.be.set(0, backends.Status{State: backends.TaskRunning, Progress: 1})
	r.waitState(t, j.ID, orchestrator.StateRunning)
	c, err := r.o.Cancel(ctx, j.ID, "")
	if err != nil || c.State != orchestrator.StateCancelled {
		t.Fatalf("Cancel = %v, %v", c, err)
	}
	r.be.mu.Lock()
	cancelled := r.be.cancelled[r.be.order[0]]
	r.be.mu.Unlock()
	if !cancelled {
		t.Fatal("the backend task was not cancelled")
	}
	again, err := r.o.Cancel(ctx, j.ID, "")
	if err != nil || again.Version != c.Version {
		t.Fatalf("second Cancel = v%d, %v; want the same job, nil", again.Version, err)
	}
	// A finished job cannot be cancelled.
	k, _, _ := r.o.Submit(ctx, "alice", spec())
	waitFor(t, "placement", func() bool { return r.be.submitted() == 2 })
	r.be.set(1, backends.Status{State: backends.TaskCompleted, Progress: 100})
	r.waitState(t, k.ID, orchestrator.StateCompleted)
	if _, err := r.o.Cancel(ctx, k.ID, ""); !errors.Is(err, orchestrator.ErrConflict) {
		t.Fatalf("Cancel(completed) = %v, want ErrConflict", err)
	}
	if _, err := r.o.Cancel(ctx, "nope", ""); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Fatalf("Cancel(unknown) = %v, want ErrNotFound", err)
	}
	evs, _ := r.o.Events(ctx, j.ID)
	if last := evs[len(evs)-1]; last.Type != events.JobCancelled {
		t.Fatalf("last event %s, want job.cancelled", last.Type)
	}
}

func TestRetryThenSucceed(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 4), nil)
	ctx := context.Background()
	j, _, _ := r.o.Submit(ctx, "alice", spec())
	waitFor(t, "placement", func() bool { return r.be.submitted() == 1 })
	code := 3
	r.be.set(0, backends.Status{State: backends.TaskFailed, Message: "agent crashed", ExitCode: &code})
	waitFor(t, "second placement", func() bool { return r.be.submitted() == 2 })
	r.be.set(1, backends.Status{State: backends.TaskCompleted, Progress: 100})
	done := r.waitState(t, j.ID, orchestrator.StateCompleted)
	if done.Attempts != 2 {
		t.Fatalf("attempts = %d, want 2", done.Attempts)
	}
	evs, _ := r.o.Events(ctx, j.ID)
	want := []events.Type{events.JobSubmitted, events.JobQueued, events.JobFailed, events.JobQueued, events.JobRunning, events.JobCompleted}
	if fmt.Sprint(types(evs)) != fmt.Sprint(want) {
		t.Fatalf("events = %v, want %v", types(evs), want)
	}
	var fd events.JobData
	evs[2].Decode(&fd)
	if fd.Error != "agent crashed (exit code 3)" {
		t.Fatalf("failure error = %q", fd.Error)
	}
}

func TestRetriesExhausted(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 4), func(c *orchestrator.Config) { c.Retry.MaxAttempts = 2 })
	ctx := context.Background()
	j, _, _ := r.o.Submit(ctx, "alice", spec())
	for i := 0; i < 2; i++ {
		waitFor(t, "placement", func() bool { return r.be.submitted() == i+1 })
		r.be.set(i, backends.Status{State: backends.TaskFailed, Message: "out of memory"})
	}
	f := r.waitState(t, j.ID, orchestrator.StateFailed)
	if f.Attempts != 2 || f.Error != "out of memory" {
		t.Fatalf("failed job attempts %d error %q", f.Attempts, f.Error)
	}
	time.Sleep(50 * time.Millisecond)
	if n := r.be.submitted(); n != 2 {
		t.Fatalf("%d submissions, want 2 (max attempts)", n)
	}
}

func TestWallTime(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 4), nil)
	ctx := context.Background()
	s := spec()
	s.WallTime = 30 * time.Millisecond
	j, _, _ := r.o.Submit(ctx, "alice", s)
	waitFor(t, "placement", func() bool { return r.be.submitted() == 1 })
	r.be.set(0, backends.Status{State: backends.TaskRunning, Progress: 1})
	f := r.waitState(t, j.ID, orchestrator.StateFailed)
	if f.Error == "" || !r.be.cancelled[r.be.order[0]] {
		t.Fatalf("timed-out job error %q, backend cancelled %v", f.Error, r.be.cancelled)
	}
}

func TestPriorityOrder(t *testing.T) {
	be := newScripted("fake", 1)
	r := newRig(t, memstore.New(nil), be, nil)
	ctx := context.Background()
	first, _, _ := r.o.Submit(ctx, "alice", spec())
	waitFor(t, "placement", func() bool { return be.submitted() == 1 })
	low := spec()
	low.Priority = -5
	lo, _, _ := r.o.Submit(ctx, "alice", low)
	high := spec()
	high.Priority = 50
	hi, _, _ := r.o.Submit(ctx, "alice", high)
	mid, _, _ := r.o.Submit(ctx, "alice", spec())
	order := []string{hi.ID, mid.ID, lo.ID}
	for i := 0; i < 3; i++ {
		be.set(i, backends.Status{State: backends.TaskCompleted, Progress: 100})
		waitFor(t, "next placement", func() bool { return be.submitted() == i+2 })
		be.mu.Lock()
		got := be.byTask[be.order[i+1]]
		be.mu.Unlock()
		if got != order[i]+"-1" {
			t.Fatalf("placement %d was task %s, want job %s", i+2, got, order[i])
		}
	}
	_ = first
}

func TestQueueLimit(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 0), func(c *orchestrator.Config) { c.MaxQueued = 2 })
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, _, err := r.o.Submit(ctx, "alice", spec()); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.o.Submit(ctx, "alice", spec()); !errors.Is(err, orchestrator.ErrResourceExhausted) {
		t.Fatalf("third Submit = %v, want ErrResourceExhausted", err)
	}
}

func TestRecoveryAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	ctx := context.Background()
	open := func() orchestrator.Store {
		s, err := sqlstore.Open(ctx, sqlstore.Config{DSN: path})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	store1 := open()
	be1 := newScripted("fake", 4)
	bus := newBus(t)
	o1, err := orchestrator.New(store1, bus, &orchestrator.Config{
		Backends: []*backends.Backend{backends.New(be1, nil)}, Logger: quiet(),
		PollInterval: 5 * time.Millisecond, ScheduleInterval: 5 * time.Millisecond,
		Retry: orchestrator.RetryPolicy{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	o1.Start(ctx)
	lost, _, _ := o1.Submit(ctx, "alice", spec())
	kept, _, _ := o1.Submit(ctx, "alice", spec())
	waitFor(t, "two placements", func() bool { return be1.submitted() == 2 })
	be1.set(0, backends.Status{State: backends.TaskRunning, Progress: 20})
	be1.set(1, backends.Status{State: backends.TaskRunning, Progress: 20})
	waitFor(t, "both running", func() bool {
		a, _ := o1.Get(ctx, lost.ID)
		b, _ := o1.Get(ctx, kept.ID)
		return a.State == orchestrator.StateRunning && b.State == orchestrator.StateRunning
	})
	o1.Stop(ctx)
	store1.Close()

	// The second process sees a backend that kept one task and lost the
	// other (as a Slurm cluster would keep it and simgpu would not).
	be2 := newScripted("fake", 4)
	be1.mu.Lock()
	keptExt := ""
	for ext, task := range be1.byTask {
		if task == kept.ID+"-1" {
			keptExt = ext
		}
	}
	be1.mu.Unlock()
	be2.tasks[keptExt] = &backends.Status{State: backends.TaskRunning, Progress: 60}
	be2.order = append(be2.order, keptExt)
	store2 := open()
	defer store2.Close()
	o2, err := orchestrator.New(store2, bus, &orchestrator.Config{
		Backends: []*backends.Backend{backends.New(be2, nil)}, Logger: quiet(),
		PollInterval: 5 * time.Millisecond, ScheduleInterval: 5 * time.Millisecond,
		Retry: orchestrator.RetryPolicy{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer o2.Stop(ctx)
	f, err := o2.Get(ctx, lost.ID)
	if err != nil || f.State != orchestrator.StateFailed || f.Error == "" {
		t.Fatalf("lost job after restart: %+v %v; want FAILED with a reason", f, err)
	}
	k, _ := o2.Get(ctx, kept.ID)
	if k.State != orchestrator.StateRunning || k.Progress < 60 {
		t.Fatalf("kept job after restart: %s %.0f%%, want RUNNING at 60%%", k.State, k.Progress)
	}
	be2.set(0, backends.Status{State: backends.TaskCompleted, Progress: 100})
	waitFor(t, "kept job completes", func() bool {
		g, _ := o2.Get(ctx, kept.ID)
		return g.State == orchestrator.StateCompleted
	})
	evs, _ := o2.Events(ctx, kept.ID)
	for i, e := range evs {
		if e.Sequence != int64(i+1) {
			t.Fatalf("kept job event %d has sequence %d after restart", i, e.Sequence)
		}
	}
}

// flaky fails its first n publishes.
type flaky struct {
	message.Publisher
	mu sync.Mutex
	n  int
}

func (f *flaky) Publish(topic string, msgs ...*message.Message) error {
	f.mu.Lock()
	if f.n > 0 {
		f.n--
		f.mu.Unlock()
		return errors.New("broker down")
	}
	f.mu.Unlock()
	return f.Publisher.Publish(topic, msgs...)
}

func TestOutboxSurvivesPublishFailures(t *testing.T) {
	gc := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	bus := events.NewBus(&flaky{Publisher: gc, n: 5}, gc, nil)
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, _ := bus.Subscribe(ctx, events.TopicJobs)
	recv := make(chan events.Event, 100)
	go func() {
		for d := range sub {
			recv <- d.Event
			d.Ack()
		}
	}()
	store := memstore.New(nil)
	be := newScripted("fake", 4)
	o, _ := orchestrator.New(store, bus, &orchestrator.Config{
		Backends: []*backends.Backend{backends.New(be, nil)}, Logger: quiet(),
		PollInterval: 5 * time.Millisecond, ScheduleInterval: 5 * time.Millisecond, OutboxInterval: 5 * time.Millisecond,
	})
	o.Start(ctx)
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		o.Stop(sctx)
	}()
	j, _, _ := o.Submit(ctx, "alice", spec())
	var got []events.Event
	for len(got) < 2 {
		select {
		case e := <-recv:
			got = append(got, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d events arrived after the broker recovered", len(got))
		}
	}
	if got[0].Type != events.JobSubmitted || got[1].Type != events.JobQueued || got[0].Subject != j.ID {
		t.Fatalf("events after recovery: %v", types(got))
	}
}

func TestWatch(t *testing.T) {
	r := newRig(t, memstore.New(nil), newScripted("fake", 4), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, _, _ := r.o.Submit(ctx, "alice", spec())
	w, err := r.o.Watch(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "placement", func() bool { return r.be.submitted() == 1 })
	r.be.set(0, backends.Status{State: backends.TaskCompleted, Progress: 100})
	for {
		select {
		case e, ok := <-w:
			if !ok {
				t.Fatal("watch closed early")
			}
			if e.Subject != j.ID {
				t.Fatalf("watch of %s got an event of %s", j.ID, e.Subject)
			}
			if e.Type == events.JobCompleted {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no job.completed on Watch")
		}
	}
}
