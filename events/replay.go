package events

import (
	"context"
	"fmt"
	"sort"
)

// JobHistory is a source of past events, in the shape of the job store's
// JobEvents method: the events of one job with a sequence above after, in
// sequence order.
type JobHistory interface {
	JobEvents(ctx context.Context, jobID string, after int64) ([]Event, error)
}

// ReplayJob re-delivers the events of job with a sequence above after, read
// from src, to h in sequence order, and returns how many h accepted. It
// stops at the first error of h, or when ctx is done. A history with a
// repeated or out-of-order sequence is an error wrapping ErrInvalidEvent:
// the consumer would otherwise apply a history that never happened.
// Consumers stay idempotent by event id, so replaying events they already
// applied is harmless.
func ReplayJob(ctx context.Context, src JobHistory, jobID string, after int64, h HandlerFunc) (int, error) {
	if src == nil || h == nil {
		return 0, fmt.Errorf("events: ReplayJob: source and handler are required")
	}
	evs, err := src.JobEvents(ctx, jobID, after)
	if err != nil {
		return 0, fmt.Errorf("events: replay job %s: read history: %w", jobID, err)
	}
	if !sort.SliceIsSorted(evs, func(i, j int) bool { return evs[i].Sequence < evs[j].Sequence }) {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].Sequence < evs[j].Sequence })
	}
	last := after
	for i, e := range evs {
		if e.Subject != jobID {
			return i, fmt.Errorf("%w: replay job %s: event %s has subject %q", ErrInvalidEvent, jobID, e.ID, e.Subject)
		}
		if e.Sequence <= last {
			return i, fmt.Errorf("%w: replay job %s: sequence %d repeats or goes back (previous %d, event %s)",
				ErrInvalidEvent, jobID, e.Sequence, last, e.ID)
		}
		if err := ctx.Err(); err != nil {
			return i, err
		}
		if err := h(ctx, e); err != nil {
			return i, fmt.Errorf("events: replay job %s: event %s (sequence %d): %w", jobID, e.ID, e.Sequence, err)
		}
		last = e.Sequence
	}
	return len(evs), nil
}
