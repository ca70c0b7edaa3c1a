package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cosmic-horizons/horizons/events"
)

// Workflow is a named workflow: its versions and which one new runs use.
type Workflow struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
	// CurrentVersion is the version new runs use; LatestVersion the
	// highest published. They differ after a rollback.
	CurrentVersion int       `json:"current_version"`
	LatestVersion  int       `json:"latest_version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// RunState is the state of a workflow run.
type RunState string

// Run states.
const (
	RunRunning   RunState = "RUNNING"
	RunCompleted RunState = "COMPLETED"
	RunFailed    RunState = "FAILED"
	RunCancelled RunState = "CANCELLED"
)

// Terminal reports whether the run has ended.
func (s RunState) Terminal() bool { return s != RunRunning }

// StepState is the state of one step of a run.
type StepState string

// Step states.
const (
	StepPending   StepState = "PENDING"
	StepRunning   StepState = "RUNNING"
	StepCompleted StepState = "COMPLETED"
	StepFailed    StepState = "FAILED"
	StepCancelled StepState = "CANCELLED"
	StepSkipped   StepState = "SKIPPED"
)

// Terminal reports whether the step has ended.
func (s StepState) Terminal() bool { return s != StepPending && s != StepRunning }

// StepRun is the state of one step in a run.
type StepRun struct {
	Name  string    `json:"name"`
	State StepState `json:"state"`
	// JobID is the orchestrator job running the step, once started.
	JobID string `json:"job_id,omitempty"`
	// Outputs are the step's declared outputs, once completed.
	Outputs json.RawMessage `json:"outputs,omitempty"`
	// Error says why the step failed, was cancelled or skipped.
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Run is one execution of a workflow version.
type Run struct {
	ID       string `json:"id"`
	Owner    string `json:"owner"`
	Workflow string `json:"workflow"`
	// Version is the definition version the run is pinned to.
	Version       int               `json:"version"`
	Inputs        map[string]string `json:"inputs,omitempty"`
	CorrelationID string            `json:"correlation_id"`
	State         RunState          `json:"state"`
	// Steps in definition order.
	Steps []StepRun `json:"steps"`
	Error string    `json:"error,omitempty"`
	// CancelRequested is set by Cancel; the engine then cancels the
	// running steps and ends the run CANCELLED.
	CancelRequested bool      `json:"cancel_requested,omitempty"`
	CancelReason    string    `json:"cancel_reason,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	FinishedAt      time.Time `json:"finished_at,omitzero"`
	// RowVersion increases with every stored change (optimistic locking).
	RowVersion int64 `json:"row_version"`
	// Sequence is the sequence number of the run's latest event.
	Sequence int64 `json:"sequence"`
}

// Step returns a pointer to the step called name, or nil.
func (r *Run) Step(name string) *StepRun {
	for i := range r.Steps {
		if r.Steps[i].Name == name {
			return &r.Steps[i]
		}
	}
	return nil
}

// Clone returns a deep copy of r.
func (r *Run) Clone() *Run {
	c := *r
	if r.Inputs != nil {
		c.Inputs = make(map[string]string, len(r.Inputs))
		for k, v := range r.Inputs {
			c.Inputs[k] = v
		}
	}
	c.Steps = make([]StepRun, len(r.Steps))
	copy(c.Steps, r.Steps)
	for i := range c.Steps {
		if c.Steps[i].Outputs != nil {
			c.Steps[i].Outputs = append(json.RawMessage(nil), c.Steps[i].Outputs...)
		}
	}
	return &c
}

// OutboxRecord is one workflow event waiting to be forwarded to the bus.
type OutboxRecord struct {
	ID    int64
	Event events.Event
}

// Store persists workflow definitions, their versions, runs, run events and
// the outbox of run events. Implementations pass the suite in
// orchestrator/workflow/workflowtest: MemStore and SQLStore.
type Store interface {
	// CreateWorkflow stores a new workflow with d as version 1 (d.Version
	// is set to 1). A taken name is ErrConflict; nothing is written then.
	CreateWorkflow(ctx context.Context, owner string, d *Definition) (*Workflow, error)
	// AddVersion stores d as version LatestVersion+1 of an existing
	// workflow and makes it current. ErrNotFound for an unknown name.
	AddVersion(ctx context.Context, d *Definition) (*Workflow, error)
	// SetCurrent makes an existing version current (a rollback).
	// ErrNotFound for an unknown name or version.
	SetCurrent(ctx context.Context, name string, version int) (*Workflow, error)
	// GetWorkflow returns the workflow called name, or ErrNotFound.
	GetWorkflow(ctx context.Context, name string) (*Workflow, error)
	// GetVersion returns one version of a workflow, or ErrNotFound.
	GetVersion(ctx context.Context, name string, version int) (*Definition, error)
	// ListWorkflows returns every workflow ordered by name.
	ListWorkflows(ctx context.Context) ([]*Workflow, error)
	// CreateRun stores a new run and its events (history and outbox) in
	// one transaction. A taken id is ErrConflict.
	CreateRun(ctx context.Context, r *Run, evs []events.Event) error
	// GetRun returns the run with id, or ErrNotFound.
	GetRun(ctx context.Context, id string) (*Run, error)
	// UpdateRun replaces the stored run with r if its stored RowVersion is
	// prev (r.RowVersion must be prev+1) and appends evs, in one
	// transaction. A mismatch is ErrConflict; an unknown run ErrNotFound.
	UpdateRun(ctx context.Context, r *Run, prev int64, evs []events.Event) error
	// ListRuns returns runs, newest first: of owner (all when empty), only
	// non-terminal ones when active is set, at most limit (0: no limit).
	ListRuns(ctx context.Context, owner string, active bool, limit int) ([]*Run, error)
	// RunEvents returns a run's events in sequence order.
	RunEvents(ctx context.Context, runID string) ([]events.Event, error)
	// PendingOutbox returns up to limit unpublished events, oldest first.
	PendingOutbox(ctx context.Context, limit int) ([]OutboxRecord, error)
	// MarkPublished marks outbox records as forwarded.
	MarkPublished(ctx context.Context, ids []int64) error
	// Close releases the store.
	Close() error
}

// MemStore is the in-memory Store. It is safe for concurrent use; the zero
// value is not ready, use NewMemStore.
type MemStore struct {
	mu        sync.Mutex
	closed    bool
	workflows map[string]*Workflow
	versions  map[string][]*Definition
	runs      map[string]*Run
	runEvents map[string][]events.Event
	outbox    []memOutbox
	nextID    int64
	now       func() time.Time
}

type memOutbox struct {
	rec       OutboxRecord
	published bool
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{
		workflows: map[string]*Workflow{},
		versions:  map[string][]*Definition{},
		runs:      map[string]*Run{},
		runEvents: map[string][]events.Event{},
		now:       func() time.Time { return time.Now().UTC() },
	}
}

func (m *MemStore) check() error {
	if m.closed {
		return ErrClosed
	}
	return nil
}

func cloneWF(w *Workflow) *Workflow { c := *w; return &c }

// CreateWorkflow implements Store.
func (m *MemStore) CreateWorkflow(ctx context.Context, owner string, d *Definition) (*Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	if _, ok := m.workflows[d.Name]; ok {
		return nil, fmt.Errorf("%w: workflow %q already exists", ErrConflict, d.Name)
	}
	now := m.now()
	d = d.Clone()
	d.Version = 1
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now
	}
	w := &Workflow{Name: d.Name, Owner: owner, CurrentVersion: 1, LatestVersion: 1, CreatedAt: now, UpdatedAt: now}
	m.workflows[d.Name] = w
	m.versions[d.Name] = []*Definition{d}
	return cloneWF(w), nil
}

// AddVersion implements Store.
func (m *MemStore) AddVersion(ctx context.Context, d *Definition) (*Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	w, ok := m.workflows[d.Name]
	if !ok {
		return nil, fmt.Errorf("%w: workflow %q", ErrNotFound, d.Name)
	}
	d = d.Clone()
	d.Version = w.LatestVersion + 1
	if d.CreatedAt.IsZero() {
		d.CreatedAt = m.now()
	}
	m.versions[d.Name] = append(m.versions[d.Name], d)
	w.LatestVersion, w.CurrentVersion, w.UpdatedAt = d.Version, d.Version, m.now()
	return cloneWF(w), nil
}

// SetCurrent implements Store.
func (m *MemStore) SetCurrent(ctx context.Context, name string, version int) (*Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	w, ok := m.workflows[name]
	if !ok {
		return nil, fmt.Errorf("%w: workflow %q", ErrNotFound, name)
	}
	if version < 1 || version > w.LatestVersion {
		return nil, fmt.Errorf("%w: workflow %q has no version %d (latest %d)", ErrNotFound, name, version, w.LatestVersion)
	}
	w.CurrentVersion, w.UpdatedAt = version, m.now()
	return cloneWF(w), nil
}

// GetWorkflow implements Store.
func (m *MemStore) GetWorkflow(ctx context.Context, name string) (*Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	w, ok := m.workflows[name]
	if !ok {
		return nil, fmt.Errorf("%w: workflow %q", ErrNotFound, name)
	}
	return cloneWF(w), nil
}

// GetVersion implements Store.
func (m *MemStore) GetVersion(ctx context.Context, name string, version int) (*Definition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	vs := m.versions[name]
	if version < 1 || version > len(vs) {
		return nil, fmt.Errorf("%w: workflow %q version %d", ErrNotFound, name, version)
	}
	return vs[version-1].Clone(), nil
}

// ListWorkflows implements Store.
func (m *MemStore) ListWorkflows(ctx context.Context) ([]*Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	out := make([]*Workflow, 0, len(m.workflows))
	for _, w := range m.workflows {
		out = append(out, cloneWF(w))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *MemStore) appendEvents(runID string, evs []events.Event) {
	for _, ev := range evs {
		m.runEvents[runID] = append(m.runEvents[runID], ev)
		m.nextID++
		m.outbox = append(m.outbox, memOutbox{rec: OutboxRecord{ID: m.nextID, Event: ev}})
	}
}

// CreateRun implements Store.
func (m *MemStore) CreateRun(ctx context.Context, r *Run, evs []events.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	if _, ok := m.runs[r.ID]; ok {
		return fmt.Errorf("%w: run %s already exists", ErrConflict, r.ID)
	}
	m.runs[r.ID] = r.Clone()
	m.appendEvents(r.ID, evs)
	return nil
}

// GetRun implements Store.
func (m *MemStore) GetRun(ctx context.Context, id string) (*Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	r, ok := m.runs[id]
	if !ok {
		return nil, fmt.Errorf("%w: run %q", ErrNotFound, id)
	}
	return r.Clone(), nil
}

// UpdateRun implements Store.
func (m *MemStore) UpdateRun(ctx context.Context, r *Run, prev int64, evs []events.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	cur, ok := m.runs[r.ID]
	if !ok {
		return fmt.Errorf("%w: run %q", ErrNotFound, r.ID)
	}
	if cur.RowVersion != prev || r.RowVersion != prev+1 {
		return fmt.Errorf("%w: run %s is at row version %d, update expected %d", ErrConflict, r.ID, cur.RowVersion, prev)
	}
	m.runs[r.ID] = r.Clone()
	m.appendEvents(r.ID, evs)
	return nil
}

// ListRuns implements Store.
func (m *MemStore) ListRuns(ctx context.Context, owner string, active bool, limit int) ([]*Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	var out []*Run
	for _, r := range m.runs {
		if (owner == "" || r.Owner == owner) && (!active || !r.State.Terminal()) {
			out = append(out, r.Clone())
		}
	}
	sortRuns(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func sortRuns(rs []*Run) {
	sort.Slice(rs, func(i, j int) bool {
		if !rs[i].CreatedAt.Equal(rs[j].CreatedAt) {
			return rs[i].CreatedAt.After(rs[j].CreatedAt)
		}
		return rs[i].ID > rs[j].ID
	})
}

// RunEvents implements Store.
func (m *MemStore) RunEvents(ctx context.Context, runID string) ([]events.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	return append([]events.Event(nil), m.runEvents[runID]...), nil
}

// PendingOutbox implements Store.
func (m *MemStore) PendingOutbox(ctx context.Context, limit int) ([]OutboxRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	var out []OutboxRecord
	for _, o := range m.outbox {
		if !o.published {
			out = append(out, o.rec)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// MarkPublished implements Store.
func (m *MemStore) MarkPublished(ctx context.Context, ids []int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	set := map[int64]bool{}
	for _, id := range ids {
		set[id] = true
	}
	kept := m.outbox[:0]
	for _, o := range m.outbox {
		if !set[o.rec.ID] {
			kept = append(kept, o)
		}
	}
	m.outbox = kept
	return nil
}

// Close implements Store.
func (m *MemStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
