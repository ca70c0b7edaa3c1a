package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// Config configures an Engine. Zero values mean the documented defaults.
type Config struct {
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Source is the events' source field; empty means "horizons/workflow".
	Source string
	// Topic is the bus topic of run events; empty means
	// events.TopicWorkflows.
	Topic string
	// PollInterval is how often active runs are re-examined when no job
	// event wakes the engine; 0 means 250ms.
	PollInterval time.Duration
	// OutboxInterval is how often the outbox is swept when nothing wakes
	// the forwarder; 0 means 1s.
	OutboxInterval time.Duration
	// Builtins are published by Start when no workflow of their name
	// exists; nil means Builtins(). Set NoBuiltins to publish none.
	Builtins   []Definition
	NoBuiltins bool
	// BuiltinOwner owns the built-in workflows; empty means "system".
	BuiltinOwner string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Engine runs workflows on an orchestrator: it validates and versions
// definitions, starts each run's ready steps as orchestrator jobs, passes
// declared outputs on, applies the failure policy, and emits workflow.*
// events through a transactional outbox. All run state lives in the Store,
// so a restarted engine resumes its runs by looking at their steps' jobs.
type Engine struct {
	orch  *orchestrator.Orchestrator
	store Store
	bus   *events.Bus
	cfg   Config
	log   *slog.Logger

	advMu      sync.Mutex // one advance at a time
	kick       chan struct{}
	runKick    chan string // one run to advance now
	outboxKick chan struct{}

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	defs    map[string]*Definition // name@version, immutable once stored
}

// New returns an engine over orch, store and bus. Call Start to run it.
func New(orch *orchestrator.Orchestrator, store Store, bus *events.Bus, cfg *Config) (*Engine, error) {
	if orch == nil || store == nil || bus == nil {
		return nil, errors.New("workflow: New: orchestrator, store and bus are required")
	}
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Source == "" {
		c.Source = "horizons/workflow"
	}
	if c.Topic == "" {
		c.Topic = events.TopicWorkflows
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.OutboxInterval <= 0 {
		c.OutboxInterval = time.Second
	}
	if c.Builtins == nil && !c.NoBuiltins {
		c.Builtins = Builtins()
	}
	if c.NoBuiltins {
		c.Builtins = nil
	}
	if c.BuiltinOwner == "" {
		c.BuiltinOwner = "system"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Engine{
		orch: orch, store: store, bus: bus, cfg: c,
		log:        c.Logger.With("component", "workflow"),
		kick:       make(chan struct{}, 1),
		runKick:    make(chan string, 1024),
		outboxKick: make(chan struct{}, 1),
		defs:       map[string]*Definition{},
	}, nil
}

func (e *Engine) now() time.Time { return e.cfg.Now().UTC() }

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// Start publishes the built-in workflows that are absent, resumes the runs
// a previous process left active, and starts the run loop and the outbox
// forwarder. Start the orchestrator first.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("workflow: Start called twice")
	}
	e.started = true
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.mu.Unlock()
	for _, d := range e.cfg.Builtins {
		if _, err := e.store.GetWorkflow(ctx, d.Name); err == nil {
			continue
		} else if !errors.Is(err, ErrNotFound) {
			cancel()
			return err
		}
		// Built-ins skip the placement check: a server whose backends
		// cannot run them (CPU only) still starts; their runs' steps fail
		// with the reason.
		if _, _, err := e.create(ctx, e.cfg.BuiltinOwner, d, false); err != nil && !errors.Is(err, ErrConflict) {
			cancel()
			return fmt.Errorf("workflow: publish built-in %q: %w", d.Name, err)
		}
		e.log.Info("published built-in workflow", "workflow", d.Name)
	}
	watch, err := e.orch.Watch(loopCtx, "")
	if err != nil {
		cancel()
		return err
	}
	e.wg.Add(2)
	go e.runLoop(loopCtx, watch)
	go e.forwardLoop(loopCtx)
	kick(e.kick)
	kick(e.outboxKick)
	return nil
}

// Stop ends the loops and forwards what the outbox holds (bounded by ctx).
// Runs stay active in the store; the next Start resumes them.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if !e.started || e.stopped {
		e.stopped = true
		e.mu.Unlock()
		return nil
	}
	e.stopped = true
	cancel := e.cancel
	e.mu.Unlock()
	cancel()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.forwardOnce(ctx)
	return nil
}

// Create validates d (including that some configured backend can run each
// step) and stores it as version 1 of a new workflow owned by owner.
// Errors: *FieldError (ErrInvalid), ErrConflict for a taken name.
func (e *Engine) Create(ctx context.Context, owner string, d Definition) (*Workflow, *Definition, error) {
	return e.create(ctx, owner, d, true)
}

func (e *Engine) create(ctx context.Context, owner string, d Definition, placement bool) (*Workflow, *Definition, error) {
	if err := d.Validate(e.orch.Agents()); err != nil {
		return nil, nil, err
	}
	if placement {
		if err := e.checkPlacement(ctx, &d); err != nil {
			return nil, nil, err
		}
	}
	d.CreatedBy, d.CreatedAt = owner, e.now()
	w, err := e.store.CreateWorkflow(ctx, owner, &d)
	if err != nil {
		return nil, nil, err
	}
	d.Version = 1
	return w, &d, nil
}

// Publish validates d and stores it as the next version of the workflow
// called name, which becomes current. d.Name may be empty or must equal
// name. Errors: *FieldError, ErrNotFound.
func (e *Engine) Publish(ctx context.Context, by, name string, d Definition) (*Workflow, *Definition, error) {
	if d.Name == "" {
		d.Name = name
	}
	if d.Name != name {
		return nil, nil, &FieldError{Field: "name", Value: d.Name, Msg: fmt.Sprintf("differs from the workflow being versioned, %q", name)}
	}
	if _, err := e.store.GetWorkflow(ctx, name); err != nil {
		return nil, nil, err
	}
	if err := d.Validate(e.orch.Agents()); err != nil {
		return nil, nil, err
	}
	if err := e.checkPlacement(ctx, &d); err != nil {
		return nil, nil, err
	}
	d.CreatedBy, d.CreatedAt = by, e.now()
	w, err := e.store.AddVersion(ctx, &d)
	if err != nil {
		return nil, nil, err
	}
	d.Version = w.LatestVersion
	return w, &d, nil
}

// checkPlacement rejects a step that no configured backend could ever run
// (too many GPUs, too much memory, an agent no backend offers). A backend
// that cannot report its capabilities now does not block the definition.
func (e *Engine) checkPlacement(ctx context.Context, d *Definition) error {
	bs := e.orch.Backends()
	for _, st := range d.Steps {
		agent, err := e.orch.Agents().Lookup(st.Agent)
		if err != nil {
			continue // Validate reported it
		}
		t := backends.Task{ID: "probe", Agent: agent.Name(), DatasetID: "probe", GPUs: st.GPUs, MemoryMB: st.MemoryMB}
		var reasons []string
		fits := false
		for _, b := range bs {
			caps, err := b.Capabilities(ctx)
			if err != nil {
				fits = true
				break
			}
			if err := caps.Fits(t); err != nil {
				reasons = append(reasons, b.Name()+": "+err.Error())
				continue
			}
			fits = true
			break
		}
		if fits {
			continue
		}
		joined := strings.Join(reasons, "; ")
		field, value := "gpus", any(st.GPUs)
		switch {
		case strings.Contains(joined, "field memory_mb"):
			field, value = "memory_mb", st.MemoryMB
		case strings.Contains(joined, "field agent"):
			field, value = "agent", st.Agent
		}
		return &FieldError{Field: fmt.Sprintf("steps[%s].%s", st.Name, field), Value: value, Msg: "no configured backend can run this step (" + joined + ")"}
	}
	return nil
}

// Rollback makes an earlier (or any published) version current. Runs
// already started keep their version. Errors: ErrNotFound.
func (e *Engine) Rollback(ctx context.Context, name string, version int) (*Workflow, error) {
	if version < 1 {
		return nil, &FieldError{Field: "version", Value: version, Msg: "must be a published version, from 1"}
	}
	return e.store.SetCurrent(ctx, name, version)
}

// Get returns a workflow and its current definition.
func (e *Engine) Get(ctx context.Context, name string) (*Workflow, *Definition, error) {
	w, err := e.store.GetWorkflow(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	d, err := e.definition(ctx, name, w.CurrentVersion)
	if err != nil {
		return nil, nil, err
	}
	return w, d.Clone(), nil
}

// Version returns one version of a workflow.
func (e *Engine) Version(ctx context.Context, name string, version int) (*Definition, error) {
	d, err := e.definition(ctx, name, version)
	if err != nil {
		return nil, err
	}
	return d.Clone(), nil
}

// List returns every workflow, ordered by name.
func (e *Engine) List(ctx context.Context) ([]*Workflow, error) { return e.store.ListWorkflows(ctx) }

func (e *Engine) definition(ctx context.Context, name string, version int) (*Definition, error) {
	key := fmt.Sprintf("%s@%d", name, version)
	e.mu.Lock()
	d, ok := e.defs[key]
	e.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := e.store.GetVersion(ctx, name, version)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.defs[key] = d
	e.mu.Unlock()
	return d, nil
}

// RunRequest asks for a run.
type RunRequest struct {
	// Workflow names the workflow. Required.
	Workflow string `json:"workflow"`
	// Version pins a version; 0 means the current one.
	Version int `json:"version,omitempty"`
	// Inputs are the run inputs; declared inputs left out take their
	// defaults.
	Inputs map[string]string `json:"inputs,omitempty"`
	// CorrelationID ties the run's and its jobs' events together;
	// generated when empty.
	CorrelationID string `json:"correlation_id,omitempty"`
}

// Submit starts a run of a workflow version owned by owner. The run is
// stored (with its workflow.submitted event) before Submit returns; its
// steps start in the background. Errors: *FieldError, ErrNotFound.
func (e *Engine) Submit(ctx context.Context, owner string, req RunRequest) (*Run, error) {
	if strings.TrimSpace(owner) == "" {
		return nil, &FieldError{Field: "owner", Value: owner, Msg: "is required"}
	}
	if req.Workflow == "" {
		return nil, &FieldError{Field: "workflow", Value: req.Workflow, Msg: "is required"}
	}
	if len(req.CorrelationID) > orchestrator.MaxCorrelationID {
		return nil, &FieldError{Field: "correlation_id", Value: req.CorrelationID, Msg: fmt.Sprintf("is longer than %d characters", orchestrator.MaxCorrelationID)}
	}
	w, err := e.store.GetWorkflow(ctx, req.Workflow)
	if err != nil {
		return nil, err
	}
	version := req.Version
	if version == 0 {
		version = w.CurrentVersion
	}
	if version < 0 || version > w.LatestVersion {
		return nil, &FieldError{Field: "version", Value: req.Version, Msg: fmt.Sprintf("workflow %q has versions 1 to %d", w.Name, w.LatestVersion)}
	}
	d, err := e.definition(ctx, w.Name, version)
	if err != nil {
		return nil, err
	}
	inputs := map[string]string{}
	for _, k := range sortedKeys(req.Inputs) {
		if _, ok := d.Inputs[k]; !ok {
			return nil, &FieldError{Field: "inputs." + k, Value: req.Inputs[k], Msg: fmt.Sprintf("workflow %q version %d declares no such input; declared: %s", d.Name, d.Version, strings.Join(sortedKeys(d.Inputs), ", "))}
		}
		if len(req.Inputs[k]) > MaxInputLen {
			return nil, &FieldError{Field: "inputs." + k, Value: fmt.Sprintf("%d characters", len(req.Inputs[k])), Msg: fmt.Sprintf("is longer than %d characters", MaxInputLen)}
		}
		inputs[k] = req.Inputs[k]
	}
	for _, k := range sortedKeys(d.Inputs) {
		if _, ok := inputs[k]; !ok {
			if d.Inputs[k] == "" {
				return nil, &FieldError{Field: "inputs." + k, Msg: "is required by workflow " + d.Name}
			}
			inputs[k] = d.Inputs[k]
		}
	}
	// Datasets that depend on inputs only are checked now, so a bad input
	// is an error to the caller instead of a failed run.
	for _, st := range d.Steps {
		rs, _ := refsIn(st.DatasetID)
		onlyInputs := true
		for _, r := range rs {
			onlyInputs = onlyInputs && r.input != ""
		}
		if !onlyInputs {
			continue
		}
		ds, _, err := resolveString(st.DatasetID, func(r ref) (json.RawMessage, error) { return json.Marshal(inputs[r.input]) })
		if err != nil {
			return nil, &FieldError{Field: fmt.Sprintf("steps[%s].dataset_id", st.Name), Value: st.DatasetID, Msg: err.Error()}
		}
		probe := orchestrator.Spec{Agent: st.Agent, DatasetID: ds}
		if err := probe.Validate(); err != nil {
			field := fmt.Sprintf("steps[%s].dataset_id", st.Name)
			if len(rs) == 1 {
				field = "inputs." + rs[0].input
			}
			return nil, &FieldError{Field: field, Value: ds, Msg: fmt.Sprintf("is not a valid dataset id for step %s: %v", st.Name, err), Err: err}
		}
	}
	corr := req.CorrelationID
	if corr == "" {
		corr = uuid.NewString()
	}
	now := e.now()
	r := &Run{
		ID: uuid.NewString(), Owner: owner, Workflow: d.Name, Version: d.Version,
		Inputs: inputs, CorrelationID: corr, State: RunRunning,
		CreatedAt: now, UpdatedAt: now, RowVersion: 1,
	}
	for _, s := range d.Steps {
		r.Steps = append(r.Steps, StepRun{Name: s.Name, State: StepPending})
	}
	ev, err := e.event(r, events.WorkflowSubmitted, nil, "")
	if err != nil {
		return nil, err
	}
	if err := e.store.CreateRun(ctx, r, []events.Event{ev}); err != nil {
		return nil, err
	}
	e.log.Info("workflow run submitted", "run", r.ID, "workflow", r.Workflow, "version", r.Version, "owner", owner, "correlation_id", corr)
	kick(e.outboxKick)
	select {
	case e.runKick <- r.ID:
	default:
		kick(e.kick)
	}
	return r, nil
}

// GetRun returns a run.
func (e *Engine) GetRun(ctx context.Context, id string) (*Run, error) { return e.store.GetRun(ctx, id) }

// ListRuns returns runs of owner (all when empty), newest first.
func (e *Engine) ListRuns(ctx context.Context, owner string, limit int) ([]*Run, error) {
	return e.store.ListRuns(ctx, owner, false, limit)
}

// RunEvents returns a run's workflow.* events in sequence order.
func (e *Engine) RunEvents(ctx context.Context, id string) ([]events.Event, error) {
	if _, err := e.store.GetRun(ctx, id); err != nil {
		return nil, err
	}
	return e.store.RunEvents(ctx, id)
}

// Cancel cancels a run: its running steps' jobs are cancelled, pending
// steps skipped, and the run ends CANCELLED. Cancelling a cancelled run
// returns it unchanged; cancelling a completed or failed one is
// ErrConflict.
func (e *Engine) Cancel(ctx context.Context, id, reason string) (*Run, error) {
	if reason == "" {
		reason = "cancelled by request"
	}
	for attempt := 0; attempt < 10; attempt++ {
		r, err := e.store.GetRun(ctx, id)
		if err != nil {
			return nil, err
		}
		switch {
		case r.State == RunCancelled:
			return r, nil
		case r.State.Terminal():
			return r, fmt.Errorf("%w: run %s is already %s", ErrConflict, id, r.State)
		case r.CancelRequested:
			return e.advance(ctx, id)
		}
		n := r.Clone()
		n.CancelRequested, n.CancelReason = true, reason
		n.RowVersion++
		n.UpdatedAt = e.now()
		err = e.store.UpdateRun(ctx, n, r.RowVersion, nil)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return e.advance(ctx, id)
	}
	return nil, fmt.Errorf("%w: run %s changed too often while cancelling", ErrConflict, id)
}

// event builds a workflow event for r's current state with the next
// sequence number, advancing r.Sequence.
func (e *Engine) event(r *Run, t events.Type, step *StepRun, reason string) (events.Event, error) {
	d := events.WorkflowData{
		RunID: r.ID, Workflow: r.Workflow, Version: r.Version, Owner: r.Owner,
		State: string(r.State), Reason: reason,
	}
	if t == events.WorkflowFailed {
		d.Error = r.Error
	}
	if step != nil {
		d.Step, d.StepState, d.StepJobID = step.Name, string(step.State), step.JobID
		d.Error = step.Error
		if step.State == StepCompleted && len(step.Outputs) > 0 {
			d.Outputs = step.Outputs
		}
	}
	ev, err := events.New(t, r.ID, d)
	if err != nil {
		return events.Event{}, err
	}
	ev.Source = e.cfg.Source
	ev.CorrelationID = r.CorrelationID
	ev.Time = e.now()
	r.Sequence++
	ev.Sequence = r.Sequence
	if err := e.bus.Validate(ev); err != nil {
		return events.Event{}, fmt.Errorf("workflow: built an invalid %s event for run %s: %w", t, r.ID, err)
	}
	return ev, nil
}

func (e *Engine) runLoop(ctx context.Context, watch <-chan events.Event) {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-watch:
			if !ok {
				// Dropped for falling behind (or stopping): watch again,
				// and look at every run for what was missed.
				if ctx.Err() != nil {
					return
				}
				w, err := e.orch.Watch(ctx, "")
				if err != nil {
					watch = nil
				} else {
					watch = w
				}
				e.advanceAll(ctx)
				continue
			}
			// A step's job ended: advance its run only (the job's
			// workflow id is the run id).
			switch ev.Type {
			case events.JobCompleted, events.JobFailed, events.JobCancelled:
			default:
				continue
			}
			var d events.JobData
			if ev.Decode(&d) != nil || d.WorkflowID == "" {
				continue
			}
			if _, err := e.advance(ctx, d.WorkflowID); err != nil && !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
				e.log.Warn("advance run", "run", d.WorkflowID, "err", err)
			}
		case id := <-e.runKick:
			if _, err := e.advance(ctx, id); err != nil && ctx.Err() == nil {
				e.log.Warn("advance run", "run", id, "err", err)
			}
		case <-e.kick:
			e.advanceAll(ctx)
		case <-t.C:
			e.advanceAll(ctx)
		}
	}
}

func (e *Engine) advanceAll(ctx context.Context) {
	runs, err := e.store.ListRuns(ctx, "", true, 0)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("list active runs", "err", err)
		}
		return
	}
	for _, r := range runs {
		if ctx.Err() != nil {
			return
		}
		if _, err := e.advance(ctx, r.ID); err != nil && ctx.Err() == nil {
			e.log.Warn("advance run", "run", r.ID, "err", err)
		}
	}
}

// advance brings one run up to date with its steps' jobs and starts what
// is ready, then stores the result and its events. It returns the stored
// run.
func (e *Engine) advance(ctx context.Context, id string) (*Run, error) {
	e.advMu.Lock()
	defer e.advMu.Unlock()
	for attempt := 0; ; attempt++ {
		r, err := e.store.GetRun(ctx, id)
		if err != nil {
			return nil, err
		}
		if r.State.Terminal() {
			return r, nil
		}
		d, err := e.definition(ctx, r.Workflow, r.Version)
		if err != nil {
			return nil, err
		}
		n := r.Clone()
		evs, err := e.step(ctx, d, n)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			return r, nil
		}
		n.RowVersion = r.RowVersion + 1
		n.UpdatedAt = e.now()
		err = e.store.UpdateRun(ctx, n, r.RowVersion, evs)
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue // another replica or Cancel moved it; look again
		}
		if err != nil {
			return nil, err
		}
		kick(e.outboxKick)
		if n.State.Terminal() {
			e.log.Info("workflow run ended", "run", n.ID, "workflow", n.Workflow, "state", n.State, "err", n.Error)
		}
		return n, nil
	}
}

// step is one pass of the run state machine over n. It returns the events
// of the changes it made (none: nothing changed).
func (e *Engine) step(ctx context.Context, d *Definition, n *Run) ([]events.Event, error) {
	var evs []events.Event
	emit := func(t events.Type, s *StepRun, reason string) error {
		ev, err := e.event(n, t, s, reason)
		if err != nil {
			return err
		}
		evs = append(evs, ev)
		return nil
	}
	now := e.now()
	finish := func(s *StepRun, st StepState, msg string) error {
		s.State, s.Error, s.FinishedAt = st, msg, now
		return emit(events.WorkflowStepCompleted, s, "")
	}

	// 1. Look at the jobs of running steps.
	for i := range n.Steps {
		s := &n.Steps[i]
		if s.State != StepRunning {
			continue
		}
		j, err := e.orch.Get(ctx, s.JobID)
		if errors.Is(err, orchestrator.ErrNotFound) {
			if err := finish(s, StepFailed, fmt.Sprintf("job %s of step %s no longer exists", s.JobID, s.Name)); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		switch j.State {
		case orchestrator.StateCompleted:
			def, _ := d.Step(s.Name)
			outs, oerr := extractOutputs(def, j.Result)
			if oerr != nil {
				err = finish(s, StepFailed, oerr.Error())
				break
			}
			s.Outputs = outs
			err = finish(s, StepCompleted, "")
		case orchestrator.StateFailed:
			err = finish(s, StepFailed, fmt.Sprintf("job %s failed: %s", j.ID, j.Error))
		case orchestrator.StateCancelled:
			err = finish(s, StepCancelled, fmt.Sprintf("job %s was cancelled: %s", j.ID, j.Error))
		}
		if err != nil {
			return nil, err
		}
	}

	// 2. A requested cancel stops everything.
	if n.CancelRequested {
		for i := range n.Steps {
			s := &n.Steps[i]
			switch s.State {
			case StepRunning:
				msg := "run cancelled: " + n.CancelReason
				j, err := e.orch.Cancel(ctx, s.JobID, "workflow run "+n.ID+" cancelled")
				if errors.Is(err, orchestrator.ErrConflict) && j != nil && j.State == orchestrator.StateCompleted {
					msg = "run cancelled after the job completed: " + n.CancelReason
				} else if err != nil && !errors.Is(err, orchestrator.ErrConflict) && !errors.Is(err, orchestrator.ErrNotFound) {
					return nil, fmt.Errorf("cancel job %s of step %s: %w", s.JobID, s.Name, err)
				}
				if err := finish(s, StepCancelled, msg); err != nil {
					return nil, err
				}
			case StepPending:
				if err := finish(s, StepSkipped, "run cancelled: "+n.CancelReason); err != nil {
					return nil, err
				}
			}
		}
		n.State, n.FinishedAt = RunCancelled, now
		n.Error = n.CancelReason
		if err := emit(events.WorkflowCancelled, nil, n.CancelReason); err != nil {
			return nil, err
		}
		return evs, nil
	}

	// 3. Failure policy and ready steps, until nothing changes.
	for changed := true; changed; {
		changed = false
		if failed := firstFailed(n); failed != nil {
			if d.FailurePolicy == Continue {
				for i := range n.Steps {
					s := &n.Steps[i]
					if s.State != StepPending {
						continue
					}
					def, _ := d.Step(s.Name)
					for _, dep := range def.DependsOn {
						if ds := n.Step(dep); ds != nil && ds.State.Terminal() && ds.State != StepCompleted {
							if err := finish(s, StepSkipped, fmt.Sprintf("dependency %s ended %s", dep, ds.State)); err != nil {
								return nil, err
							}
							changed = true
							break
						}
					}
				}
			} else {
				why := fmt.Sprintf("step %s %s (fail_fast)", failed.Name, strings.ToLower(string(failed.State)))
				for i := range n.Steps {
					s := &n.Steps[i]
					switch s.State {
					case StepRunning:
						_, err := e.orch.Cancel(ctx, s.JobID, "workflow run "+n.ID+": "+why)
						if err != nil && !errors.Is(err, orchestrator.ErrConflict) && !errors.Is(err, orchestrator.ErrNotFound) {
							return nil, fmt.Errorf("cancel job %s of step %s: %w", s.JobID, s.Name, err)
						}
						if err := finish(s, StepCancelled, "cancelled: "+why); err != nil {
							return nil, err
						}
					case StepPending:
						if err := finish(s, StepSkipped, "skipped: "+why); err != nil {
							return nil, err
						}
					}
				}
			}
		}
		for i := range n.Steps {
			s := &n.Steps[i]
			if s.State != StepPending {
				continue
			}
			def, _ := d.Step(s.Name)
			if !depsCompleted(n, def) {
				continue
			}
			spec, rerr := e.resolve(d, def, n)
			if rerr != nil {
				if err := finish(s, StepFailed, rerr.Error()); err != nil {
					return nil, err
				}
				changed = true
				continue
			}
			j, _, err := e.orch.Submit(ctx, n.Owner, spec)
			if err != nil {
				var fe *orchestrator.FieldError
				if errors.As(err, &fe) {
					if err := finish(s, StepFailed, "job spec rejected: "+err.Error()); err != nil {
						return nil, err
					}
					changed = true
					continue
				}
				// Transient (a full queue, the store): try on the next pass.
				e.log.Warn("submit step", "run", n.ID, "step", s.Name, "err", err)
				continue
			}
			s.State, s.JobID, s.StartedAt = StepRunning, j.ID, now
			if err := emit(events.WorkflowStepStarted, s, ""); err != nil {
				return nil, err
			}
			changed = true
		}
	}

	// 4. The run ends when every step has.
	done := true
	for _, s := range n.Steps {
		if !s.State.Terminal() {
			done = false
		}
	}
	if done {
		n.FinishedAt = now
		if f := firstFailed(n); f != nil {
			n.State = RunFailed
			n.Error = fmt.Sprintf("step %s %s: %s", f.Name, strings.ToLower(string(f.State)), f.Error)
			if err := emit(events.WorkflowFailed, nil, ""); err != nil {
				return nil, err
			}
		} else {
			n.State = RunCompleted
			if err := emit(events.WorkflowCompleted, nil, ""); err != nil {
				return nil, err
			}
		}
	}
	return evs, nil
}

// firstFailed returns the first step (in definition order) that failed or
// whose job was cancelled from outside, or nil.
func firstFailed(r *Run) *StepRun {
	for i := range r.Steps {
		if s := &r.Steps[i]; s.State == StepFailed || s.State == StepCancelled && !strings.HasPrefix(s.Error, "cancelled: ") {
			return s
		}
	}
	return nil
}

func depsCompleted(r *Run, s Step) bool {
	for _, dep := range s.DependsOn {
		if ds := r.Step(dep); ds == nil || ds.State != StepCompleted {
			return false
		}
	}
	return true
}

// resolve builds the job spec of step s in run r, substituting inputs and
// the outputs of completed steps.
func (e *Engine) resolve(d *Definition, s Step, r *Run) (orchestrator.Spec, error) {
	lookup := func(rf ref) (json.RawMessage, error) {
		if rf.input != "" {
			v, ok := r.Inputs[rf.input]
			if !ok {
				return nil, fmt.Errorf("input %q has no value", rf.input)
			}
			return json.Marshal(v)
		}
		ds := r.Step(rf.step)
		if ds == nil || ds.State != StepCompleted {
			return nil, fmt.Errorf("step %q has not completed", rf.step)
		}
		v, ok := lookupPath(ds.Outputs, rf.output)
		if !ok {
			return nil, fmt.Errorf("step %q produced no output %q", rf.step, rf.output)
		}
		return v, nil
	}
	spec := s.spec()
	ds, _, err := resolveString(s.DatasetID, lookup)
	if err != nil {
		return spec, fmt.Errorf("cannot resolve dataset_id %q: %v", s.DatasetID, err)
	}
	spec.DatasetID = ds
	params, err := resolveParams(s.Params, lookup)
	if err != nil {
		return spec, fmt.Errorf("cannot resolve %v", err)
	}
	spec.Params = params
	spec.WorkflowID = r.ID
	spec.CorrelationID = r.CorrelationID
	spec.IdempotencyKey = "wf:" + r.ID + ":" + s.Name
	return spec, nil
}

// extractOutputs reads s's declared outputs from a job result.
func extractOutputs(s Step, result json.RawMessage) (json.RawMessage, error) {
	if len(s.Outputs) == 0 {
		return nil, nil
	}
	out := map[string]json.RawMessage{}
	for _, k := range sortedKeys(s.Outputs) {
		v, ok := lookupPath(result, s.Outputs[k])
		if !ok {
			return nil, fmt.Errorf("output %q: the job result has no %q", k, s.Outputs[k])
		}
		out[k] = v
	}
	return json.Marshal(out)
}

func (e *Engine) forwardLoop(ctx context.Context) {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.OutboxInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.outboxKick:
		case <-t.C:
		}
		for e.forwardOnce(ctx) > 0 && ctx.Err() == nil {
		}
	}
}

// forwardOnce publishes one batch of the outbox and returns its size.
func (e *Engine) forwardOnce(ctx context.Context) int {
	recs, err := e.store.PendingOutbox(ctx, 100)
	if err != nil || len(recs) == 0 {
		if err != nil && ctx.Err() == nil {
			e.log.Warn("read workflow outbox", "err", err)
		}
		return 0
	}
	evs := make([]events.Event, len(recs))
	ids := make([]int64, len(recs))
	for i, r := range recs {
		evs[i], ids[i] = r.Event, r.ID
	}
	if err := e.bus.Publish(ctx, e.cfg.Topic, evs...); err != nil {
		if ctx.Err() == nil {
			e.log.Warn("publish workflow events", "err", err)
		}
		return 0
	}
	if err := e.store.MarkPublished(ctx, ids); err != nil {
		e.log.Warn("mark workflow events published", "err", err)
		return 0
	}
	return len(recs)
}
