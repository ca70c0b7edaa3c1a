package events

import (
	"context"
	"sync"
)

// DefaultDedupWindow is the number of event ids a Deduplicator remembers
// when NewDeduplicator is given a size of zero or less.
const DefaultDedupWindow = 10000

// Deduplicator remembers the ids of the last N events a consumer applied, so
// that a redelivery (delivery is at least once) is recognised and skipped. It
// forgets the oldest id first. It is safe for concurrent use.
//
// A window bounds memory, not correctness: a duplicate that arrives after more
// than N newer events is not recognised, so consumers whose effects must be
// exactly once over any span (the audit chain, the job store) also check the
// event id in their own storage.
type Deduplicator struct {
	mu   sync.Mutex
	ring []string // ring buffer of ids in insertion order
	next int      // index of the slot to overwrite next
	full bool
	set  map[string]struct{}
}

// NewDeduplicator returns a Deduplicator that remembers size ids (zero or less
// means DefaultDedupWindow).
func NewDeduplicator(size int) *Deduplicator {
	if size <= 0 {
		size = DefaultDedupWindow
	}
	return &Deduplicator{ring: make([]string, size), set: make(map[string]struct{}, size)}
}

// Seen reports whether id is in the window.
func (d *Deduplicator) Seen(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.set[id]
	return ok
}

// Mark adds id to the window, evicting the oldest id when the window is full.
// It reports whether id was new.
func (d *Deduplicator) Mark(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[id]; ok {
		return false
	}
	if d.full {
		delete(d.set, d.ring[d.next])
	}
	d.ring[d.next] = id
	d.set[id] = struct{}{}
	d.next++
	if d.next == len(d.ring) {
		d.next = 0
		d.full = true
	}
	return true
}

// Len returns the number of ids in the window.
func (d *Deduplicator) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.set)
}

// Wrap returns a handler that skips events whose id is in the window and runs
// h for the others, marking an event's id only after h succeeds, so a failed
// attempt is retried rather than skipped.
func (d *Deduplicator) Wrap(h HandlerFunc) HandlerFunc {
	return func(ctx context.Context, e Event) error {
		if d.Seen(e.ID) {
			return nil
		}
		if err := h(ctx, e); err != nil {
			return err
		}
		d.Mark(e.ID)
		return nil
	}
}
