package cache

import "errors"

// Sentinel errors. Every error the package returns wraps one of them (test
// with errors.Is) and names the key, tag or field and the bad value.
var (
	// ErrNotFound means the key is absent, expired, or cached as not found
	// (negative caching).
	ErrNotFound = errors.New("cache: not found")
	// ErrClosed means the cache or tier was closed.
	ErrClosed = errors.New("cache: closed")
	// ErrTooLarge means an encoded value exceeds the configured maximum size.
	ErrTooLarge = errors.New("cache: value too large")
	// ErrInvalidKey means a key or tag is empty, too long, not UTF-8 or holds
	// control characters.
	ErrInvalidKey = errors.New("cache: invalid key")
	// ErrNilValue means Set or a loader was given a nil value.
	ErrNilValue = errors.New("cache: nil value")
	// ErrInvalidArgument means another argument is unusable: a nil
	// destination, a negative TTL, a nil loader, a bad configuration.
	ErrInvalidArgument = errors.New("cache: invalid argument")
	// ErrCorrupt means a tier returned bytes that do not decode as an entry,
	// or an entry stored under another key.
	ErrCorrupt = errors.New("cache: corrupt entry")
	// ErrUnavailable means a tier could not be reached; reads fall through
	// to the other tiers, writes and deletes report it.
	ErrUnavailable = errors.New("cache: tier unavailable")
)
