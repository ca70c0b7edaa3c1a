package backends

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Sentinel errors. Drivers wrap them with %w.
var (
	// ErrTaskNotFound reports a handle the backend does not know (never
	// submitted, forgotten after a restart, or aged out).
	ErrTaskNotFound = errors.New("backends: task not found")
	// ErrNoCapacity reports that the backend cannot take the task now.
	ErrNoCapacity = errors.New("backends: no capacity")
	// ErrInvalidTask reports a task the backend can never run (too many
	// GPUs, too much memory, too long a wall time, bad fields).
	ErrInvalidTask = errors.New("backends: invalid task")
	// ErrUnavailable reports that the backend cannot be reached.
	ErrUnavailable = errors.New("backends: unavailable")
	// ErrUnauthorized reports bad or expired credentials.
	ErrUnauthorized = errors.New("backends: unauthorized")
	// ErrUnsupported reports an operation the backend does not offer.
	ErrUnsupported = errors.New("backends: unsupported")
	// ErrClosed reports use of a closed backend.
	ErrClosed = errors.New("backends: closed")
)

// TaskState is the state of a task on a backend.
type TaskState string

// Task states. Pending and Running are live; the rest are terminal.
const (
	TaskPending   TaskState = "PENDING"
	TaskRunning   TaskState = "RUNNING"
	TaskCompleted TaskState = "COMPLETED"
	TaskFailed    TaskState = "FAILED"
	TaskCancelled TaskState = "CANCELLED"
	// TaskTimeout means the backend killed the task at its wall-time limit.
	TaskTimeout TaskState = "TIMEOUT"
)

// Terminal reports whether s is a final state.
func (s TaskState) Terminal() bool {
	switch s {
	case TaskCompleted, TaskFailed, TaskCancelled, TaskTimeout:
		return true
	}
	return false
}

// Task is one agent run handed to a backend.
type Task struct {
	// ID identifies the task to the caller; the orchestrator uses the job
	// id plus the attempt number. Required.
	ID string `json:"id"`
	// Agent is the canonical agent name. Required.
	Agent string `json:"agent"`
	// DatasetID names the input dataset. Required.
	DatasetID string `json:"dataset_id"`
	// GPUs is the number of GPUs (0 for CPU-only).
	GPUs int `json:"gpus"`
	// MemoryMB is the memory per task in MiB; 0 means the backend default.
	MemoryMB int `json:"memory_mb"`
	// WallTime is the time limit; 0 means the backend maximum.
	WallTime time.Duration `json:"wall_time"`
	// Params are the agent parameters, already validated.
	Params json.RawMessage `json:"params,omitempty"`
	// Env is extra environment for the task. Values are never logged.
	Env map[string]string `json:"env,omitempty"`
	// Labels are free-form annotations (owner, correlation id).
	Labels map[string]string `json:"labels,omitempty"`
}

// Validate checks the fields every backend needs.
func (t Task) Validate() error {
	switch {
	case t.ID == "":
		return fmt.Errorf("%w: field id is empty", ErrInvalidTask)
	case t.Agent == "":
		return fmt.Errorf("%w: field agent is empty (task %s)", ErrInvalidTask, t.ID)
	case t.DatasetID == "":
		return fmt.Errorf("%w: field dataset_id is empty (task %s)", ErrInvalidTask, t.ID)
	case t.GPUs < 0:
		return fmt.Errorf("%w: field gpus is %d, want >= 0 (task %s)", ErrInvalidTask, t.GPUs, t.ID)
	case t.MemoryMB < 0:
		return fmt.Errorf("%w: field memory_mb is %d, want >= 0 (task %s)", ErrInvalidTask, t.MemoryMB, t.ID)
	case t.WallTime < 0:
		return fmt.Errorf("%w: field wall_time is %s, want >= 0 (task %s)", ErrInvalidTask, t.WallTime, t.ID)
	}
	return nil
}

// Handle identifies a submitted task. It is stored with the job and is
// enough to find the task again after a restart.
type Handle struct {
	// Backend is the name of the backend that holds the task.
	Backend string `json:"backend"`
	// ExternalID is the backend's own id (a Slurm job id, a Tapis UUID).
	ExternalID string `json:"external_id"`
	// Data is optional driver state needed by Recover.
	Data json.RawMessage `json:"data,omitempty"`
}

// IsZero reports whether h is empty.
func (h Handle) IsZero() bool { return h.Backend == "" && h.ExternalID == "" }

// Status is what a backend knows about a task.
type Status struct {
	State TaskState `json:"state"`
	// Progress is the completed fraction in percent, 0–100.
	Progress float64 `json:"progress"`
	// Message is a human-readable note (the failure reason, a queue reason).
	Message string `json:"message,omitempty"`
	// ExitCode is the process exit code where the backend knows one.
	ExitCode *int `json:"exit_code,omitempty"`
	// Result is the agent's output document on completion.
	Result json.RawMessage `json:"result,omitempty"`
	// Node names where the task runs, if known.
	Node      string    `json:"node,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
}

// Capabilities describe what a backend can run.
type Capabilities struct {
	// MaxGPUs is the most GPUs one task may ask for.
	MaxGPUs int `json:"max_gpus"`
	// MaxMemoryMB is the most memory one task may ask for.
	MaxMemoryMB int `json:"max_memory_mb"`
	// MaxWallTime is the longest wall time one task may ask for.
	MaxWallTime time.Duration `json:"max_wall_time"`
	// Cancel reports whether running tasks can be cancelled.
	Cancel bool `json:"cancel"`
	// Recover reports whether tasks survive a restart of the caller.
	Recover bool `json:"recover"`
	// Agents lists the agents the backend can run; empty means any.
	Agents []string `json:"agents,omitempty"`
}

// Fits reports whether t is within c, with the reason when it is not.
func (c Capabilities) Fits(t Task) error {
	if c.MaxGPUs >= 0 && t.GPUs > c.MaxGPUs {
		return fmt.Errorf("%w: field gpus is %d, backend maximum is %d", ErrInvalidTask, t.GPUs, c.MaxGPUs)
	}
	if c.MaxMemoryMB > 0 && t.MemoryMB > c.MaxMemoryMB {
		return fmt.Errorf("%w: field memory_mb is %d, backend maximum is %d", ErrInvalidTask, t.MemoryMB, c.MaxMemoryMB)
	}
	if c.MaxWallTime > 0 && t.WallTime > c.MaxWallTime {
		return fmt.Errorf("%w: field wall_time is %s, backend maximum is %s", ErrInvalidTask, t.WallTime, c.MaxWallTime)
	}
	if len(c.Agents) > 0 {
		ok := false
		for _, a := range c.Agents {
			if a == t.Agent {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("%w: field agent is %q, backend runs only %v", ErrInvalidTask, t.Agent, c.Agents)
		}
	}
	return nil
}

// Capacity is the free and total capacity of a backend at one moment.
type Capacity struct {
	TotalGPUs int `json:"total_gpus"`
	FreeGPUs  int `json:"free_gpus"`
	// FreeSlots is how many more tasks the backend accepts now; a negative
	// value means no limit is known.
	FreeSlots int `json:"free_slots"`
	// Running and Pending count the tasks the backend holds.
	Running int `json:"running"`
	Pending int `json:"pending"`
}

// Driver is the interface a backend implementer writes. Callers use
// *Backend instead, which validates arguments before they reach the driver.
type Driver interface {
	// Name is the backend name stored in handles, e.g. "simgpu".
	Name() string
	// Capabilities reports what one task may ask for.
	Capabilities(ctx context.Context) (Capabilities, error)
	// Capacity reports what is free now.
	Capacity(ctx context.Context) (Capacity, error)
	// Submit starts t and returns its handle.
	Submit(ctx context.Context, t Task) (Handle, error)
	// Status reports the state of the task behind h.
	Status(ctx context.Context, h Handle) (Status, error)
	// Cancel stops the task. Cancelling a finished task is not an error.
	Cancel(ctx context.Context, h Handle) error
	// Recover re-attaches to a task after the caller restarted. It returns
	// ErrTaskNotFound when the task is gone.
	Recover(ctx context.Context, h Handle) (Status, error)
	// Close releases the driver's resources.
	Close() error
}

// Options configure a Backend. The zero value is usable.
type Options struct {
	// Logger receives one line per submit and cancel; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Backend is the portable handle on a compute backend. It is safe for
// concurrent use if the driver is.
type Backend struct {
	d   Driver
	log *slog.Logger
}

// New wraps d.
func New(d Driver, opts *Options) *Backend {
	if opts == nil {
		opts = &Options{}
	}
	l := opts.Logger
	if l == nil {
		l = slog.Default()
	}
	return &Backend{d: d, log: l.With("backend", d.Name())}
}

// Name returns the driver name.
func (b *Backend) Name() string { return b.d.Name() }

// Driver returns the wrapped driver, for type assertions to a concrete
// driver (the As escape hatch).
func (b *Backend) Driver() Driver { return b.d }

// Capabilities reports what one task may ask for.
func (b *Backend) Capabilities(ctx context.Context) (Capabilities, error) {
	return b.d.Capabilities(ctx)
}

// Capacity reports what is free now.
func (b *Backend) Capacity(ctx context.Context) (Capacity, error) { return b.d.Capacity(ctx) }

// Submit validates t against the task rules and the backend capabilities and
// submits it.
func (b *Backend) Submit(ctx context.Context, t Task) (Handle, error) {
	if err := t.Validate(); err != nil {
		return Handle{}, err
	}
	caps, err := b.d.Capabilities(ctx)
	if err != nil {
		return Handle{}, fmt.Errorf("backends: %s capabilities: %w", b.Name(), err)
	}
	if err := caps.Fits(t); err != nil {
		return Handle{}, fmt.Errorf("backends: %s: task %s: %w", b.Name(), t.ID, err)
	}
	h, err := b.d.Submit(ctx, t)
	if err != nil {
		b.log.Warn("submit failed", "task", t.ID, "agent", t.Agent, "err", err)
		return Handle{}, err
	}
	b.log.Debug("submitted", "task", t.ID, "agent", t.Agent, "gpus", t.GPUs, "external_id", h.ExternalID)
	return h, nil
}

func (b *Backend) checkHandle(h Handle) error {
	if h.ExternalID == "" {
		return fmt.Errorf("%w: handle has an empty external_id", ErrTaskNotFound)
	}
	if h.Backend != "" && h.Backend != b.Name() {
		return fmt.Errorf("%w: handle belongs to backend %q, not %q", ErrTaskNotFound, h.Backend, b.Name())
	}
	return nil
}

// Status reports the state of the task behind h.
func (b *Backend) Status(ctx context.Context, h Handle) (Status, error) {
	if err := b.checkHandle(h); err != nil {
		return Status{}, err
	}
	return b.d.Status(ctx, h)
}

// Cancel stops the task behind h.
func (b *Backend) Cancel(ctx context.Context, h Handle) error {
	if err := b.checkHandle(h); err != nil {
		return err
	}
	err := b.d.Cancel(ctx, h)
	b.log.Debug("cancel", "external_id", h.ExternalID, "err", err)
	return err
}

// Recover re-attaches to the task behind h after a restart.
func (b *Backend) Recover(ctx context.Context, h Handle) (Status, error) {
	if err := b.checkHandle(h); err != nil {
		return Status{}, err
	}
	return b.d.Recover(ctx, h)
}

// Close closes the driver.
func (b *Backend) Close() error { return b.d.Close() }
