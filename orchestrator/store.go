package orchestrator

import (
	"context"
	"time"

	"github.com/cosmic-horizons/horizons/events"
)

// Store persists jobs, their event history and the transactional outbox.
// Every method that writes a job also writes the job's new events to the
// history and to the outbox in the same transaction, so a crash can never
// separate a state change from its events. Implementations pass the suite in
// orchestrator/orchestratortest.
type Store interface {
	// CreateJob stores a new job and its events. When j.IdempotencyKey is
	// set and the owner already has a job with that key, nothing is written
	// and the existing job is returned with created == false.
	CreateJob(ctx context.Context, j *Job, evs []events.Event) (stored *Job, created bool, err error)
	// GetJob returns the job with id, or ErrNotFound.
	GetJob(ctx context.Context, id string) (*Job, error)
	// JobByIdempotencyKey returns owner's job created with key, or
	// ErrNotFound.
	JobByIdempotencyKey(ctx context.Context, owner, key string) (*Job, error)
	// ListJobs returns one page of jobs, newest first.
	ListJobs(ctx context.Context, q ListQuery) (Page, error)
	// CountJobs counts the jobs of owner (all owners when empty) in states
	// (all states when empty).
	CountJobs(ctx context.Context, owner string, states []State) (int, error)
	// UpdateJob replaces the stored job with j if the stored version is
	// prevVersion, and appends evs. j.Version must be prevVersion+1. A
	// version mismatch is ErrConflict; an unknown job ErrNotFound.
	UpdateJob(ctx context.Context, j *Job, prevVersion int64, evs []events.Event) error
	// JobEvents returns the job's events with sequence > after, in sequence
	// order.
	JobEvents(ctx context.Context, jobID string, after int64) ([]events.Event, error)
	// PendingOutbox returns up to limit unpublished outbox records, oldest
	// first.
	PendingOutbox(ctx context.Context, limit int) ([]OutboxRecord, error)
	// MarkPublished marks outbox records as forwarded to the bus.
	MarkPublished(ctx context.Context, ids []int64) error
	// RenewLeases sets LeaseExpiresAt to until on every non-terminal job
	// whose LeaseHolder is holder, without changing its version, and
	// returns how many jobs it renewed. It is the heartbeat of a replica.
	RenewLeases(ctx context.Context, holder string, until time.Time) (int, error)
	// ClaimReady reserves for holder up to limit jobs that are ready to be
	// placed: QUEUED, on no backend, NextAttemptAt not after now, owner not
	// in skipOwners, and not reserved by another holder whose lease is live
	// at now. It sets their LeaseHolder to holder and LeaseExpiresAt to
	// until, without changing their Version, and returns them highest
	// Priority first, then oldest. Concurrent callers never receive the
	// same job (PostgreSQL: FOR UPDATE SKIP LOCKED). A reservation needs no
	// version change: every other path to a queued job either respects
	// live reservations (ClaimReady) or may win against the holder anyway
	// (a cancel), which the holder's version-checked placement then sees.
	ClaimReady(ctx context.Context, holder string, now, until time.Time, limit int, skipOwners []string) ([]*Job, error)
	// ReleaseUnplaced clears holder's reservations of jobs that are still
	// on no backend, so any replica may claim them again.
	ReleaseUnplaced(ctx context.Context, holder string) error
	// PlacedUsage returns, per owner, the jobs placed on a backend (QUEUED
	// or RUNNING with a Backend) and the GPUs they hold.
	PlacedUsage(ctx context.Context) (map[string]Usage, error)
	// FollowedJobs returns the jobs placed on a backend (QUEUED or RUNNING
	// with a Backend) whose LeaseHolder is holder, or whose lease has
	// expired at now (an empty LeaseHolder counts as expired).
	FollowedJobs(ctx context.Context, holder string, now time.Time) ([]*Job, error)
	// Close releases the store.
	Close() error
}

// Usage is what one owner has placed on backends.
type Usage struct {
	Jobs int `json:"jobs"`
	GPUs int `json:"gpus"`
}

// OutboxRecord is one event waiting to be forwarded to the bus.
type OutboxRecord struct {
	ID        int64
	Topic     string
	Event     events.Event
	CreatedAt time.Time
}

// ListQuery selects jobs.
type ListQuery struct {
	// Owner restricts to one owner; empty means all.
	Owner string
	// States restricts to these states; empty means all.
	States []State
	// Limit is the page size: 0 means 50; at most 1000.
	Limit int
	// Cursor continues a previous page (Page.NextCursor).
	Cursor string
	// WorkflowID restricts to one workflow.
	WorkflowID string
}

// Page is one page of ListJobs.
type Page struct {
	Jobs []*Job
	// NextCursor is empty on the last page.
	NextCursor string
}

// Page size limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Normalize applies defaults and checks bounds.
func (q *ListQuery) Normalize() error {
	if q.Limit < 0 || q.Limit > MaxPageSize {
		return &FieldError{Field: "limit", Value: q.Limit, Msg: "must be between 1 and 1000"}
	}
	if q.Limit == 0 {
		q.Limit = DefaultPageSize
	}
	for _, s := range q.States {
		if !s.Valid() {
			return &FieldError{Field: "state", Value: string(s), Msg: "unknown state"}
		}
	}
	return nil
}

// ReadyOrder reports whether job a is placed before job b: higher priority
// first, then older, then by id. ClaimReady returns jobs in this order.
func ReadyOrder(a, b *Job) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}
