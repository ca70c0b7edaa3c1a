package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
)

// RetryPolicy decides whether and when a failed job runs again.
type RetryPolicy struct {
	// MaxAttempts counts every run, the first included; 0 means 3, 1
	// disables retries.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry; 0 means 2s.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait; 0 means 5m.
	MaxBackoff time.Duration
	// Multiplier grows the wait per attempt; 0 means 2.
	Multiplier float64
	// Jitter is the random fraction (0–1) added to or taken from each
	// wait; 0 means 0.2, negative means none.
	Jitter float64
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 3
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 2 * time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 5 * time.Minute
	}
	if p.Multiplier <= 0 {
		p.Multiplier = 2
	}
	if p.Jitter == 0 {
		p.Jitter = 0.2
	}
	if p.Jitter < 0 {
		p.Jitter = 0
	}
	if p.Jitter > 1 {
		p.Jitter = 1
	}
	return p
}

// Backoff returns the wait before the retry that follows attempt (1 for the
// first run). u in [0,1) supplies the jitter.
func (p RetryPolicy) Backoff(attempt int, u float64) time.Duration {
	p = p.withDefaults()
	if attempt < 1 {
		attempt = 1
	}
	d := float64(p.InitialBackoff) * math.Pow(p.Multiplier, float64(attempt-1))
	if d > float64(p.MaxBackoff) {
		d = float64(p.MaxBackoff)
	}
	d *= 1 + p.Jitter*(2*u-1)
	return time.Duration(d)
}

// Config configures an Orchestrator. Zero values mean the documented
// defaults.
type Config struct {
	// Backends the scheduler places jobs on, tried in order. Required.
	Backends []*backends.Backend
	// Agents validates agent names and parameters; nil means
	// agents.NewRegistry().
	Agents *agents.Registry
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Source is the events' source field; empty means "horizons/orchestrator".
	Source string
	// Topic is the bus topic for job events; empty means events.TopicJobs.
	Topic string
	// Retry is the retry policy for failed jobs.
	Retry RetryPolicy
	// ProgressStep emits job.progress every this many percent; 0 means 10.
	ProgressStep float64
	// DefaultWallTime applies to jobs that set none; 0 means 1h.
	DefaultWallTime time.Duration
	// PollInterval is how often running tasks are polled; 0 means 500ms.
	PollInterval time.Duration
	// ScheduleInterval is how often the queue is scanned; 0 means 250ms.
	ScheduleInterval time.Duration
	// OutboxInterval is how often the outbox is swept when nothing wakes
	// the forwarder; 0 means 1s.
	OutboxInterval time.Duration
	// MaxQueued rejects submissions with ErrResourceExhausted when this
	// many jobs wait; 0 means 10000.
	MaxQueued int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand supplies retry jitter in [0,1); nil means math/rand/v2.
	Rand func() float64
	// ReplicaID names this orchestrator among the replicas that share one
	// store; it is the lease holder of the jobs it works on. Empty means a
	// random id. A process restarted with the same id takes its own jobs
	// back at once instead of waiting for their leases to expire.
	ReplicaID string
	// LeaseTTL is how long a replica's claim on a job lasts without a
	// heartbeat before another replica may take the job over; 0 means 30s.
	LeaseTTL time.Duration
	// HeartbeatInterval is how often the replica renews its leases; 0
	// means LeaseTTL/3.
	HeartbeatInterval time.Duration
	// Quotas bound what each owner may run at once; the zero value
	// imposes none.
	Quotas Quotas
	// Workers is how many jobs the monitor follows, and the scheduler
	// places, at once (each is a store transaction and a backend call);
	// 0 means 16.
	Workers int
}

// Quota bounds one owner's running work. Zero fields mean no limit.
type Quota struct {
	// MaxRunning is the most jobs the owner may have placed on backends
	// (QUEUED on a backend or RUNNING) at once.
	MaxRunning int `json:"max_running"`
	// MaxGPUs is the most GPUs the owner's placed jobs may hold at once;
	// a job asking for more is rejected at submission.
	MaxGPUs int `json:"max_gpus"`
}

// Quotas holds the default quota and per-owner overrides.
type Quotas struct {
	Default Quota
	// Users overrides Default for the named owners.
	Users map[string]Quota
}

// For returns the quota of owner.
func (q Quotas) For(owner string) Quota {
	if u, ok := q.Users[owner]; ok {
		return u
	}
	return q.Default
}

// Orchestrator runs jobs: it validates and stores them, schedules them on
// backends, follows them to a final state, retries failures under the retry
// policy, and publishes every transition through the transactional outbox.
//
// # Durability
//
// Each state change is written together with its event, in one store
// transaction, to the job row, the job's event history and the outbox table.
// A forwarder then publishes outbox records to the bus in order and marks
// them published. A crash before the commit loses the change and its event
// together; a crash after the commit but before forwarding leaves the event
// in the outbox, and the next process forwards it. A crash between publishing
// and marking publishes the event again: delivery is at least once, and
// consumers de-duplicate by event id.
//
// # Replicas
//
// Any number of orchestrators may share one store (PostgreSQL in
// production). Each has a ReplicaID; the scheduler reserves ready jobs for
// itself (Store.ClaimReady), records the attempt, then submits the task
// under the deterministic id TaskID(job, attempt); the replica then holds
// the job's lease, renews it every HeartbeatInterval, and alone follows the
// task. When a replica dies its leases expire after LeaseTTL and the others
// take its jobs over and re-attach to their tasks with the backend's
// Recover. Per-job wall-time limits and these heartbeats replace any global
// "stuck" timeout, so a week-long job is never rescued while its replica
// lives.
type Orchestrator struct {
	store    Store
	bus      *events.Bus
	cfg      Config
	log      *slog.Logger
	backends map[string]*backends.Backend

	schedKick  chan struct{}
	outboxKick chan struct{}

	mu       sync.Mutex
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	watchers map[*watcher]struct{}
	randMu   sync.Mutex
	stages   sync.Map // job id -> last stage note announced (stage.go)
}

// New returns an orchestrator over store and bus. Call Start to run it.
func New(store Store, bus *events.Bus, cfg *Config) (*Orchestrator, error) {
	if store == nil {
		return nil, errors.New("orchestrator: New: store is nil")
	}
	if bus == nil {
		return nil, errors.New("orchestrator: New: bus is nil")
	}
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if len(c.Backends) == 0 {
		return nil, errors.New("orchestrator: New: Config.Backends is empty; give at least one backend")
	}
	if c.Agents == nil {
		c.Agents = agents.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Source == "" {
		c.Source = "horizons/orchestrator"
	}
	if c.Topic == "" {
		c.Topic = events.TopicJobs
	}
	c.Retry = c.Retry.withDefaults()
	if c.ProgressStep <= 0 || c.ProgressStep > 100 {
		c.ProgressStep = 10
	}
	if c.DefaultWallTime <= 0 {
		c.DefaultWallTime = time.Hour
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.ScheduleInterval <= 0 {
		c.ScheduleInterval = 250 * time.Millisecond
	}
	if c.OutboxInterval <= 0 {
		c.OutboxInterval = time.Second
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 10000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.ReplicaID == "" {
		c.ReplicaID = "replica-" + uuid.NewString()[:8]
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.LeaseTTL {
		c.HeartbeatInterval = c.LeaseTTL / 3
	}
	for owner, q := range c.Quotas.Users {
		if q.MaxRunning < 0 || q.MaxGPUs < 0 {
			return nil, fmt.Errorf("orchestrator: New: Config.Quotas.Users[%q] = %+v: limits must be >= 0", owner, q)
		}
	}
	if c.Quotas.Default.MaxRunning < 0 || c.Quotas.Default.MaxGPUs < 0 {
		return nil, fmt.Errorf("orchestrator: New: Config.Quotas.Default = %+v: limits must be >= 0", c.Quotas.Default)
	}
	o := &Orchestrator{
		store:      store,
		bus:        bus,
		cfg:        c,
		log:        c.Logger.With("component", "orchestrator"),
		backends:   map[string]*backends.Backend{},
		schedKick:  make(chan struct{}, 1),
		outboxKick: make(chan struct{}, 1),
		watchers:   map[*watcher]struct{}{},
	}
	for _, b := range c.Backends {
		if b == nil {
			return nil, errors.New("orchestrator: New: Config.Backends holds a nil backend")
		}
		if _, dup := o.backends[b.Name()]; dup {
			return nil, fmt.Errorf("orchestrator: New: two backends are named %q", b.Name())
		}
		o.backends[b.Name()] = b
	}
	return o, nil
}

func (o *Orchestrator) now() time.Time { return o.cfg.Now().UTC() }

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Start recovers jobs left non-terminal by a previous process, forwards any
// events still in the outbox, and starts the scheduler, the monitor and the
// outbox forwarder. It returns once recovery is done; the loops run until
// Stop.
func (o *Orchestrator) Start(ctx context.Context) error {
	o.mu.Lock()
	if o.started {
		o.mu.Unlock()
		return errors.New("orchestrator: Start called twice")
	}
	o.started = true
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	o.cancel = cancel
	o.mu.Unlock()

	if err := o.recover(ctx); err != nil {
		cancel()
		return fmt.Errorf("orchestrator: recovery: %w", err)
	}
	o.wg.Add(3)
	go o.forwardLoop(loopCtx)
	go o.runLoop(loopCtx)
	go o.heartbeatLoop(loopCtx)
	kick(o.outboxKick)
	kick(o.schedKick)
	return nil
}

// Stop stops the background loops, forwards what the outbox still holds
// (bounded by ctx), and waits for the loops to end or for ctx.
func (o *Orchestrator) Stop(ctx context.Context) error {
	o.mu.Lock()
	if !o.started || o.stopped {
		o.stopped = true
		o.mu.Unlock()
		return nil
	}
	o.stopped = true
	cancel := o.cancel
	o.mu.Unlock()
	cancel()
	done := make(chan struct{})
	go func() { o.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Last sweep so events committed just before Stop are not left behind
	// longer than necessary (they would be forwarded on the next start).
	_ = o.forwardOnce(ctx)
	// Hand the jobs over: leases that expire now let any other replica
	// (or the next start of this one) take them at once.
	if _, err := o.store.RenewLeases(ctx, o.cfg.ReplicaID, o.now().Add(-time.Nanosecond)); err != nil {
		o.log.Warn("stop: release leases", "err", err)
	}
	o.mu.Lock()
	for w := range o.watchers {
		w.close()
		delete(o.watchers, w)
	}
	o.mu.Unlock()
	return nil
}

// Store returns the job store.
func (o *Orchestrator) Store() Store { return o.store }

// Agents returns the agent registry.
func (o *Orchestrator) Agents() *agents.Registry { return o.cfg.Agents }

// ReplicaID returns the id this orchestrator holds job leases under.
func (o *Orchestrator) ReplicaID() string { return o.cfg.ReplicaID }

// Backends returns the configured backends in order.
func (o *Orchestrator) Backends() []*backends.Backend {
	return append([]*backends.Backend(nil), o.cfg.Backends...)
}

// Submit validates spec and stores a new job owned by owner, then queues it.
// With an idempotency key already used by owner it returns the first job
// and created == false. Errors: *FieldError (ErrInvalidSpec),
// ErrResourceExhausted.
func (o *Orchestrator) Submit(ctx context.Context, owner string, spec Spec) (job *Job, created bool, err error) {
	if strings.TrimSpace(owner) == "" {
		return nil, false, &FieldError{Field: "owner", Value: owner, Msg: "is required"}
	}
	if err := spec.Validate(); err != nil {
		return nil, false, err
	}
	agent, err := o.cfg.Agents.Lookup(spec.Agent)
	if err != nil {
		return nil, false, &FieldError{Field: "agent", Value: spec.Agent, Msg: "unknown agent; known: " + strings.Join(o.cfg.Agents.Names(), ", "), Err: err}
	}
	params, err := agent.ValidateParams(spec.Params)
	if err != nil {
		var pe *agents.ParamError
		if errors.As(err, &pe) {
			field := "params"
			if pe.Field != "params" {
				field = "params." + pe.Field
			}
			return nil, false, &FieldError{Field: field, Value: pe.Value, Msg: pe.Msg, Err: err}
		}
		return nil, false, &FieldError{Field: "params", Value: string(spec.Params), Msg: err.Error(), Err: err}
	}
	wall := spec.WallTime
	if wall == 0 {
		wall = o.cfg.DefaultWallTime
	}
	mem := spec.MemoryMB
	if mem == 0 {
		if est, err := agent.Estimate(agents.EstimateInput{DatasetID: spec.DatasetID, GPUs: spec.GPUs, Params: params}); err == nil {
			mem = est.MemoryMB
		}
	}
	// A job no backend could ever run is rejected now, not after queueing.
	probe := backends.Task{ID: "probe", Agent: agent.Name(), DatasetID: spec.DatasetID, GPUs: spec.GPUs, MemoryMB: mem, WallTime: wall}
	if spec.MemoryMB == 0 {
		probe.MemoryMB = 0 // an estimate never disqualifies a backend
	}
	if err := o.anyBackendFits(ctx, probe); err != nil {
		return nil, false, err
	}
	if q := o.cfg.Quotas.For(owner); q.MaxGPUs > 0 && spec.GPUs > q.MaxGPUs {
		return nil, false, &FieldError{Field: "gpus", Value: spec.GPUs, Msg: fmt.Sprintf("exceeds the GPU quota of owner %q (%d GPUs at once)", owner, q.MaxGPUs)}
	}
	// A replayed idempotency key returns the first job even when the
	// queue is full now.
	if spec.IdempotencyKey != "" {
		prev, err := o.store.JobByIdempotencyKey(ctx, owner, spec.IdempotencyKey)
		if err == nil {
			return prev, false, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, false, err
		}
	}
	waiting, err := o.store.CountJobs(ctx, "", []State{StateSubmitted, StateQueued})
	if err != nil {
		return nil, false, err
	}
	if waiting >= o.cfg.MaxQueued {
		return nil, false, fmt.Errorf("%w: %d jobs are waiting (limit %d); retry later", ErrResourceExhausted, waiting, o.cfg.MaxQueued)
	}
	now := o.now()
	corr := spec.CorrelationID
	if corr == "" {
		corr = uuid.NewString()
	}
	j := &Job{
		ID:             uuid.NewString(),
		Owner:          owner,
		Agent:          agent.Name(),
		DatasetID:      spec.DatasetID,
		GPUs:           spec.GPUs,
		MemoryMB:       mem,
		WallTime:       wall,
		Params:         params,
		Priority:       spec.Priority,
		IdempotencyKey: spec.IdempotencyKey,
		CorrelationID:  corr,
		WorkflowID:     spec.WorkflowID,
		DependsOn:      append([]string(nil), spec.DependsOn...),
		State:          StateSubmitted,
		CreatedAt:      now,
		UpdatedAt:      now,
		Version:        1,
		AgentVersion:   AgentVersion(agent.Descriptor()),
	}
	if raw, err := json.Marshal(spec); err == nil {
		j.SubmittedSpec = raw
	}
	// The job is stored already QUEUED, with both its job.submitted and
	// its job.queued event, in one transaction.
	ev1, err := o.newEvent(j, events.JobSubmitted, "", "")
	if err != nil {
		return nil, false, err
	}
	j.State = StateQueued
	ev2, err := o.newEvent(j, events.JobQueued, StateSubmitted, "accepted")
	if err != nil {
		return nil, false, err
	}
	stored, created, err := o.store.CreateJob(ctx, j, []events.Event{ev1, ev2})
	if err != nil {
		return nil, false, err
	}
	if !created {
		return stored, false, nil
	}
	kick(o.outboxKick)
	kick(o.schedKick)
	return stored, true, nil
}

func (o *Orchestrator) anyBackendFits(ctx context.Context, t backends.Task) error {
	var reasons []string
	for _, b := range o.cfg.Backends {
		caps, err := b.Capabilities(ctx)
		if err != nil {
			reasons = append(reasons, b.Name()+": "+err.Error())
			continue
		}
		if err := caps.Fits(t); err != nil {
			reasons = append(reasons, b.Name()+": "+err.Error())
			continue
		}
		return nil
	}
	field, value := "gpus", any(t.GPUs)
	joined := strings.Join(reasons, "; ")
	switch {
	case strings.Contains(joined, "field memory_mb"):
		field, value = "memory_mb", t.MemoryMB
	case strings.Contains(joined, "field wall_time"):
		field, value = "wall_time", t.WallTime.String()
	case strings.Contains(joined, "field agent"):
		field, value = "agent", t.Agent
	}
	return &FieldError{Field: field, Value: value, Msg: "no configured backend can run this job (" + joined + ")"}
}

// Get returns a job.
func (o *Orchestrator) Get(ctx context.Context, id string) (*Job, error) {
	return o.store.GetJob(ctx, id)
}

// List returns a page of jobs, newest first.
func (o *Orchestrator) List(ctx context.Context, q ListQuery) (Page, error) {
	if err := q.Normalize(); err != nil {
		return Page{}, err
	}
	return o.store.ListJobs(ctx, q)
}

// Events returns a job's events in sequence order.
func (o *Orchestrator) Events(ctx context.Context, id string) ([]events.Event, error) {
	if _, err := o.store.GetJob(ctx, id); err != nil {
		return nil, err
	}
	return o.store.JobEvents(ctx, id, 0)
}

// Cancel cancels a job, stopping its backend task if it has one. Cancelling
// a cancelled job returns it unchanged; cancelling a completed or failed job
// is ErrConflict.
func (o *Orchestrator) Cancel(ctx context.Context, id, reason string) (*Job, error) {
	if reason == "" {
		reason = "cancelled by request"
	}
	for attempt := 0; attempt < 10; attempt++ {
		j, err := o.store.GetJob(ctx, id)
		if err != nil {
			return nil, err
		}
		switch j.State {
		case StateCancelled:
			return j, nil
		case StateCompleted, StateFailed:
			return j, fmt.Errorf("%w: job %s is already %s", ErrConflict, id, j.State)
		}
		if j.ExternalID != "" {
			if b, ok := o.backends[j.Backend]; ok {
				err := b.Cancel(ctx, o.handle(j))
				if err != nil && !errors.Is(err, backends.ErrTaskNotFound) {
					return nil, fmt.Errorf("orchestrator: cancel job %s on backend %s: %w", id, j.Backend, err)
				}
			}
		}
		nj, err := o.transition(ctx, j, StateCancelled, events.JobCancelled, reason, func(n *Job) {
			n.FinishedAt = o.now()
		})
		if errors.Is(err, ErrConflict) {
			continue // raced with the monitor; look again
		}
		return nj, err
	}
	return nil, fmt.Errorf("%w: job %s changed too often while cancelling", ErrConflict, id)
}

func (o *Orchestrator) handle(j *Job) backends.Handle {
	return backends.Handle{Backend: j.Backend, ExternalID: j.ExternalID, Data: j.HandleData}
}

// newEvent builds the event for j's current (already updated) state with
// sequence j.Sequence+1 and advances j.Sequence.
func (o *Orchestrator) newEvent(j *Job, t events.Type, prev State, reason string) (events.Event, error) {
	return o.newStageEvent(j, t, prev, reason, "")
}

// newStageEvent is newEvent with data.stage set (job.progress events that
// announce a stage).
func (o *Orchestrator) newStageEvent(j *Job, t events.Type, prev State, reason, stage string) (events.Event, error) {
	data := events.JobData{
		JobID:      j.ID,
		Owner:      j.Owner,
		Agent:      j.Agent,
		DatasetID:  j.DatasetID,
		GPUs:       j.GPUs,
		Priority:   j.Priority,
		State:      string(j.State),
		PrevState:  string(prev),
		Progress:   j.Progress,
		Attempt:    j.Attempts,
		Backend:    j.Backend,
		ExternalID: j.ExternalID,
		WorkflowID: j.WorkflowID,
		Reason:     reason,
		Stage:      stage,
		Error:      j.Error,
		Result:     j.Result,
	}
	if t == events.JobQueued && !j.NextAttemptAt.IsZero() {
		data.NextAttemptAt = j.NextAttemptAt.UTC().Format(time.RFC3339Nano)
	}
	ev, err := events.New(t, j.ID, data)
	if err != nil {
		return events.Event{}, err
	}
	ev.Source = o.cfg.Source
	ev.CorrelationID = j.CorrelationID
	ev.Time = o.now()
	j.Sequence++
	ev.Sequence = j.Sequence
	if err := o.bus.Validate(ev); err != nil {
		return events.Event{}, fmt.Errorf("orchestrator: built an invalid %s event for job %s: %w", t, j.ID, err)
	}
	return ev, nil
}

// transition moves j to state `to`, applying mutate to the new copy, and
// stores it with its event in one transaction.
func (o *Orchestrator) transition(ctx context.Context, j *Job, to State, t events.Type, reason string, mutate func(*Job)) (*Job, error) {
	if err := CheckTransition(j.State, to); err != nil {
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	n := j.Clone()
	prev := n.State
	n.State = to
	if mutate != nil {
		mutate(n)
	}
	return o.commit(ctx, j, n, []evSpec{{t: t, prev: prev, reason: reason}})
}

type evSpec struct {
	t      events.Type
	prev   State
	reason string
	stage  string
}

func (o *Orchestrator) commit(ctx context.Context, old, n *Job, specs []evSpec) (*Job, error) {
	n.Version = old.Version + 1
	n.UpdatedAt = o.now()
	o.stampLease(n)
	if n.State.Terminal() {
		reason := n.Error
		if len(specs) > 0 && reason == "" {
			reason = specs[len(specs)-1].reason
		}
		closeAttempt(n, n.State, reason, n.UpdatedAt)
	}
	var evs []events.Event
	for _, s := range specs {
		ev, err := o.newStageEvent(n, s.t, s.prev, s.reason, s.stage)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	if err := o.store.UpdateJob(ctx, n, old.Version, evs); err != nil {
		return nil, err
	}
	if len(evs) > 0 {
		kick(o.outboxKick)
	}
	return n, nil
}

// save stores a change that carries no event (placement, silent progress).
func (o *Orchestrator) save(ctx context.Context, old, n *Job) (*Job, error) {
	return o.commit(ctx, old, n, nil)
}

// ---------------------------------------------------------------------------
// Outbox forwarder and watchers

func (o *Orchestrator) forwardLoop(ctx context.Context) {
	defer o.wg.Done()
	t := time.NewTicker(o.cfg.OutboxInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.outboxKick:
		case <-t.C:
		}
		for {
			n := o.forwardOnce(ctx)
			if n == 0 || ctx.Err() != nil {
				break
			}
		}
	}
}

// forwardOnce publishes one batch of outbox records and returns how many
// it forwarded.
func (o *Orchestrator) forwardOnce(ctx context.Context) int {
	recs, err := o.store.PendingOutbox(ctx, 500)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("outbox: read", "err", err)
		}
		return 0
	}
	var done []int64
	for _, r := range recs {
		if err := o.bus.Publish(ctx, r.Topic, r.Event); err != nil {
			if ctx.Err() == nil {
				o.log.Warn("outbox: publish failed; will retry", "event", r.Event.ID, "type", r.Event.Type, "err", err)
			}
			break
		}
		done = append(done, r.ID)
		o.notify(r.Event)
	}
	if len(done) > 0 {
		if err := o.store.MarkPublished(ctx, done); err != nil && ctx.Err() == nil {
			o.log.Error("outbox: mark published", "err", err)
		}
	}
	return len(done)
}

type watcher struct {
	jobID string
	ch    chan events.Event
	once  sync.Once
}

func (w *watcher) close() { w.once.Do(func() { close(w.ch) }) }

// WatchBuffer is the number of events a watcher may fall behind before it is
// dropped (its channel closed).
const WatchBuffer = 256

// Watch returns the job events this orchestrator forwards from now on, for
// one job (jobID non-empty) or all jobs, until ctx is done. A watcher that
// falls more than WatchBuffer events behind is dropped: its channel closes
// early, and it should re-read history with Events and watch again.
// Events of other replicas reach only bus subscribers, not Watch.
func (o *Orchestrator) Watch(ctx context.Context, jobID string) (<-chan events.Event, error) {
	w := &watcher{jobID: jobID, ch: make(chan events.Event, WatchBuffer)}
	o.mu.Lock()
	if o.stopped {
		o.mu.Unlock()
		return nil, ErrClosed
	}
	o.watchers[w] = struct{}{}
	o.mu.Unlock()
	go func() {
		<-ctx.Done()
		o.mu.Lock()
		delete(o.watchers, w)
		o.mu.Unlock()
		w.close()
	}()
	return w.ch, nil
}

func (o *Orchestrator) notify(ev events.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for w := range o.watchers {
		if w.jobID != "" && w.jobID != ev.Subject {
			continue
		}
		select {
		case w.ch <- ev:
		default:
			delete(o.watchers, w)
			w.close()
		}
	}
}
