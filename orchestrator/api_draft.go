package orchestrator

// This file holds the public API of the engine while it is being written;
// the bodies move into orchestrator.go.

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
)

var errDraft = errors.New("orchestrator: not written yet")

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
	// MaxQueued rejects submissions with ErrResourceExhausted when this
	// many jobs wait; 0 means 10000.
	MaxQueued int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Orchestrator runs jobs: it validates and stores them, schedules them on
// backends, follows them to a final state, retries failures under the retry
// policy, and publishes every transition through the transactional outbox.
type Orchestrator struct{}

// New returns an orchestrator over store and bus. Call Start to run it.
func New(store Store, bus *events.Bus, cfg *Config) (*Orchestrator, error) { return nil, errDraft }

// Start recovers jobs left non-terminal by a previous process and starts the
// scheduler, the monitor and the outbox forwarder. It returns at once.
func (o *Orchestrator) Start(ctx context.Context) error { return errDraft }

// Stop stops the background loops and waits for them, or for ctx.
func (o *Orchestrator) Stop(ctx context.Context) error { return errDraft }

// Submit validates spec and stores a new job owned by owner. With an
// idempotency key already used by owner it returns the first job and
// created == false. Errors: *FieldError (ErrInvalidSpec), ErrResourceExhausted.
func (o *Orchestrator) Submit(ctx context.Context, owner string, spec Spec) (job *Job, created bool, err error) {
	return nil, false, errDraft
}

// Get returns a job.
func (o *Orchestrator) Get(ctx context.Context, id string) (*Job, error) { return nil, errDraft }

// List returns a page of jobs.
func (o *Orchestrator) List(ctx context.Context, q ListQuery) (Page, error) { return Page{}, errDraft }

// Cancel cancels a job. Cancelling a cancelled job returns it unchanged;
// cancelling a completed or failed job is ErrConflict.
func (o *Orchestrator) Cancel(ctx context.Context, id, reason string) (*Job, error) {
	return nil, errDraft
}

// Events returns a job's events in sequence order.
func (o *Orchestrator) Events(ctx context.Context, id string) ([]events.Event, error) {
	return nil, errDraft
}
