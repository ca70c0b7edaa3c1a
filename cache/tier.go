package cache

import "context"

// Tier is the driver interface a storage layer implements (the in-process
// Memory tier, cache/rediscache, cache/blobcache). cache/cachetest holds the
// conformance suite every Tier passes.
//
// Methods are safe for concurrent use. Get returns an error wrapping
// ErrNotFound for an absent or expired key and never returns an entry whose
// Key differs from key; the returned Entry must not share memory with the
// tier. Set stores a copy of e (an already expired e is deleted instead).
// Delete and DeleteTag of absent keys and tags succeed. DeleteTag removes
// every entry whose Tags hold tag. After Close every method returns an error
// wrapping ErrClosed. Other errors mean the storage is unreachable or
// failing.
type Tier interface {
	// Name identifies the tier in stats, metrics and errors ("memory",
	// "redis", "disk", "s3").
	Name() string
	Get(ctx context.Context, key string) (Entry, error)
	Set(ctx context.Context, e Entry) error
	Delete(ctx context.Context, key string) error
	DeleteTag(ctx context.Context, tag string) error
	Close() error
}

// EvictionCounter is implemented by tiers that evict entries on their own
// (size-bounded tiers); Tiered.Stats reports the count.
type EvictionCounter interface {
	// Evictions is the number of entries evicted for capacity so far.
	Evictions() uint64
}
