package cache

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultMemoryBytes is the default capacity of a Memory tier.
const DefaultMemoryBytes = 64 << 20

// entryOverhead approximates the bookkeeping bytes of one entry, added to its
// key, value and tags when weighing it.
const entryOverhead = 96

// MemoryConfig configures NewMemory. A nil *MemoryConfig means the defaults.
type MemoryConfig struct {
	// MaxBytes bounds the weight (key + value + tags + overhead) of the
	// entries held (default DefaultMemoryBytes).
	MaxBytes int64
	// Name is the tier's name in stats (default "memory").
	Name string
	// Now is the clock used for expiry (default time.Now).
	Now func() time.Time
}

// Memory is the in-process tier: a size-bounded otter cache (W-TinyLFU
// admission and eviction) with per-entry expiry and a tag index.
type Memory struct {
	name      string
	now       func() time.Time
	ownClock  bool // a custom Now: expiry is checked against it on Get
	c         *otter.Cache[string, Entry]
	evictions atomic.Uint64
	closed    atomic.Bool

	mu   sync.Mutex
	tags map[string]map[string]struct{} // tag -> keys that carried it
}

// NewMemory returns an in-process tier.
func NewMemory(cfg *MemoryConfig) (*Memory, error) {
	m := &Memory{name: "memory", now: time.Now, tags: map[string]map[string]struct{}{}}
	maxBytes := int64(DefaultMemoryBytes)
	if cfg != nil {
		if cfg.MaxBytes < 0 {
			return nil, fmt.Errorf("%w: MemoryConfig.MaxBytes = %d: must not be negative", ErrInvalidArgument, cfg.MaxBytes)
		}
		if cfg.MaxBytes > 0 {
			maxBytes = cfg.MaxBytes
		}
		if cfg.Name != "" {
			m.name = cfg.Name
		}
		if cfg.Now != nil {
			m.now, m.ownClock = cfg.Now, true
		}
	}
	c, err := otter.New(&otter.Options[string, Entry]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       weigh,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, Entry]) time.Duration {
			if e.Value.Expires.IsZero() {
				return math.MaxInt64
			}
			return max(e.Value.Expires.Sub(m.now()), time.Nanosecond)
		}),
		OnDeletion: m.onDeletion,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: memory tier: %v", ErrInvalidArgument, err)
	}
	m.c = c
	return m, nil
}

func weigh(key string, e Entry) uint32 {
	n := entryOverhead + len(key) + len(e.Value)
	for _, t := range e.Tags {
		n += len(t) + 16
	}
	return uint32(min(n, math.MaxUint32))
}

func (m *Memory) onDeletion(ev otter.DeletionEvent[string, Entry]) {
	if ev.Cause == otter.CauseReplacement {
		return
	}
	if ev.WasEvicted() && ev.Cause == otter.CauseOverflow {
		m.evictions.Add(1)
	}
	if len(ev.Value.Tags) == 0 {
		return
	}
	cur, ok := m.c.GetIfPresent(ev.Key)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range ev.Value.Tags {
		if ok && cur.HasTag(t) {
			continue
		}
		if keys := m.tags[t]; keys != nil {
			delete(keys, ev.Key)
			if len(keys) == 0 {
				delete(m.tags, t)
			}
		}
	}
}

// Name implements Tier.
func (m *Memory) Name() string { return m.name }

// Get implements Tier.
func (m *Memory) Get(_ context.Context, key string) (Entry, error) {
	if m.closed.Load() {
		return Entry{}, fmt.Errorf("%w: memory tier: get %q", ErrClosed, key)
	}
	// otter drops expired entries itself on the wall clock; a custom clock
	// needs the check here (reading the clock costs a quarter of a Get).
	e, ok := m.c.GetIfPresent(key)
	if !ok || m.ownClock && e.Expired(m.now()) {
		return Entry{}, fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	return e.Clone(), nil
}

// Set implements Tier.
func (m *Memory) Set(_ context.Context, e Entry) error {
	if m.closed.Load() {
		return fmt.Errorf("%w: memory tier: set %q", ErrClosed, e.Key)
	}
	if e.Expired(m.now()) {
		m.c.Invalidate(e.Key)
		return nil
	}
	e = e.Clone()
	if len(e.Tags) > 0 {
		m.mu.Lock()
		for _, t := range e.Tags {
			keys := m.tags[t]
			if keys == nil {
				keys = map[string]struct{}{}
				m.tags[t] = keys
			}
			keys[e.Key] = struct{}{}
		}
		m.mu.Unlock()
	}
	m.c.Set(e.Key, e)
	return nil
}

// Delete implements Tier.
func (m *Memory) Delete(_ context.Context, key string) error {
	if m.closed.Load() {
		return fmt.Errorf("%w: memory tier: delete %q", ErrClosed, key)
	}
	m.c.Invalidate(key)
	return nil
}

// DeleteTag implements Tier.
func (m *Memory) DeleteTag(_ context.Context, tag string) error {
	if m.closed.Load() {
		return fmt.Errorf("%w: memory tier: delete tag %q", ErrClosed, tag)
	}
	m.mu.Lock()
	keys := m.tags[tag]
	delete(m.tags, tag)
	m.mu.Unlock()
	for k := range keys {
		m.c.ComputeIfPresent(k, func(old Entry) (Entry, otter.ComputeOp) {
			if old.HasTag(tag) {
				return old, otter.InvalidateOp
			}
			return old, otter.CancelOp
		})
	}
	return nil
}

// Evictions implements EvictionCounter.
func (m *Memory) Evictions() uint64 { return m.evictions.Load() }

// Len is the number of entries held (an estimate while evictions run).
func (m *Memory) Len() int { return m.c.EstimatedSize() }

// Close implements Tier: it drops every entry.
func (m *Memory) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.c.InvalidateAll()
	m.c.StopAllGoroutines()
	return nil
}
