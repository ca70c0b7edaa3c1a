package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults of Config.
const (
	DefaultTTL          = time.Hour
	DefaultNegativeTTL  = 30 * time.Second
	DefaultMaxValueSize = 1 << 20
	DefaultRetryAfter   = time.Second
	DefaultLoadTimeout  = 30 * time.Second
	DefaultQueueSize    = 1024
)

// WriteMode chooses how Set reaches the tiers after the first.
type WriteMode int

const (
	// WriteThrough writes every tier before Set returns (the default).
	WriteThrough WriteMode = iota
	// WriteBehind writes the first tier before Set returns and the others
	// from a background queue, in order; Delete and DeleteTag wait for the
	// queue so an invalidation is never overtaken by an older write, and
	// Close drains it.
	WriteBehind
)

// String names the mode.
func (m WriteMode) String() string {
	switch m {
	case WriteThrough:
		return "write-through"
	case WriteBehind:
		return "write-behind"
	}
	return fmt.Sprintf("WriteMode(%d)", int(m))
}

// Cache is the portable interface of a cache of encoded values. *Tiered
// implements it.
type Cache interface {
	// Get decodes the value of key into the pointer dst, or returns an
	// error wrapping ErrNotFound.
	Get(ctx context.Context, key string, dst any) error
	// Set stores value under key for ttl (zero: the cache's default) with
	// the given tags.
	Set(ctx context.Context, key string, value any, ttl time.Duration, tags ...string) error
	// Delete drops key.
	Delete(ctx context.Context, key string) error
	// DeleteTag drops every entry carrying tag.
	DeleteTag(ctx context.Context, tag string) error
}

// Config configures New. A nil *Config means the defaults.
type Config struct {
	// Codec encodes values (default JSON).
	Codec Codec
	// DefaultTTL applies when Set or LoadOptions give no TTL (default
	// DefaultTTL, 1 h).
	DefaultTTL time.Duration
	// NegativeTTL is how long a loader's "not found" answer is cached
	// (default DefaultNegativeTTL, 30 s; negative disables negative
	// caching).
	NegativeTTL time.Duration
	// MaxValueSize bounds an encoded value in bytes (default
	// DefaultMaxValueSize, 1 MiB); larger values fail with ErrTooLarge.
	MaxValueSize int
	// WriteMode is WriteThrough (default) or WriteBehind.
	WriteMode WriteMode
	// QueueSize bounds the write-behind queue (default DefaultQueueSize);
	// Set waits when it is full.
	QueueSize int
	// RetryAfter is how long a tier that failed is left alone before it is
	// tried again (default DefaultRetryAfter, 1 s).
	RetryAfter time.Duration
	// LoadTimeout bounds one loader call, which runs detached from the
	// contexts of the callers waiting for it (default DefaultLoadTimeout).
	LoadTimeout time.Duration
	// Logger receives tier failures and recoveries (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// tierState is a tier with its counters and health.
type tierState struct {
	t                                 Tier
	hits, misses, sets, deletes, errs atomic.Uint64
	skipped                           atomic.Uint64
	downUntil                         atomic.Int64 // Unix ns; 0 = healthy
	mu                                sync.Mutex
	lastErr                           string
	lastErrAt                         time.Time
}

// op is one write-behind operation.
type op struct {
	e    *Entry
	key  string // Delete
	tag  string // DeleteTag
	done chan error
}

// Tiered is the concrete multi-tier cache. Create it with New; it is safe for
// concurrent use.
type Tiered struct {
	tiers      []*tierState
	codec      Codec
	ttl        time.Duration
	negTTL     time.Duration
	maxSize    int
	mode       WriteMode
	retryAfter time.Duration
	loadTO     time.Duration
	log        *slog.Logger
	now        func() time.Time

	sf                                          singleflight.Group
	hits, misses, negHits, loads, loadErrs, shr atomic.Uint64

	closeMu sync.RWMutex
	closed  bool
	queue   chan op
	drained chan struct{}
}

// New returns a cache over tiers, read in the order given (fastest first).
func New(tiers []Tier, cfg *Config) (*Tiered, error) {
	if len(tiers) == 0 {
		return nil, fmt.Errorf("%w: New: no tiers", ErrInvalidArgument)
	}
	c := &Tiered{codec: JSON{}, ttl: DefaultTTL, negTTL: DefaultNegativeTTL, maxSize: DefaultMaxValueSize,
		retryAfter: DefaultRetryAfter, loadTO: DefaultLoadTimeout, log: slog.Default(), now: time.Now}
	queue := DefaultQueueSize
	if cfg != nil {
		if cfg.DefaultTTL < 0 || cfg.MaxValueSize < 0 || cfg.QueueSize < 0 || cfg.RetryAfter < 0 || cfg.LoadTimeout < 0 {
			return nil, fmt.Errorf("%w: Config: DefaultTTL (%v), MaxValueSize (%d), QueueSize (%d), RetryAfter (%v) and LoadTimeout (%v) must not be negative",
				ErrInvalidArgument, cfg.DefaultTTL, cfg.MaxValueSize, cfg.QueueSize, cfg.RetryAfter, cfg.LoadTimeout)
		}
		if cfg.WriteMode != WriteThrough && cfg.WriteMode != WriteBehind {
			return nil, fmt.Errorf("%w: Config.WriteMode = %d: want WriteThrough or WriteBehind", ErrInvalidArgument, cfg.WriteMode)
		}
		if cfg.Codec != nil {
			c.codec = cfg.Codec
		}
		if cfg.DefaultTTL > 0 {
			c.ttl = cfg.DefaultTTL
		}
		if cfg.NegativeTTL != 0 {
			c.negTTL = max(cfg.NegativeTTL, 0)
		}
		if cfg.MaxValueSize > 0 {
			c.maxSize = cfg.MaxValueSize
		}
		c.mode = cfg.WriteMode
		if cfg.QueueSize > 0 {
			queue = cfg.QueueSize
		}
		if cfg.RetryAfter > 0 {
			c.retryAfter = cfg.RetryAfter
		}
		if cfg.LoadTimeout > 0 {
			c.loadTO = cfg.LoadTimeout
		}
		if cfg.Logger != nil {
			c.log = cfg.Logger
		}
		if cfg.Now != nil {
			c.now = cfg.Now
		}
	}
	names := map[string]bool{}
	for i, t := range tiers {
		if t == nil {
			return nil, fmt.Errorf("%w: New: tier %d is nil", ErrInvalidArgument, i)
		}
		if names[t.Name()] {
			return nil, fmt.Errorf("%w: New: two tiers are named %q", ErrInvalidArgument, t.Name())
		}
		names[t.Name()] = true
		c.tiers = append(c.tiers, &tierState{t: t})
	}
	if c.mode == WriteBehind && len(tiers) > 1 {
		c.queue = make(chan op, queue)
		c.drained = make(chan struct{})
		go c.writeBehind()
	}
	return c, nil
}

// NewMemoryCache returns a Tiered cache over one Memory tier with the given
// configurations (nil: defaults): the embedded default.
func NewMemoryCache(mem *MemoryConfig, cfg *Config) (*Tiered, error) {
	m, err := NewMemory(mem)
	if err != nil {
		return nil, err
	}
	return New([]Tier{m}, cfg)
}

func errRawType(v any) error {
	return fmt.Errorf("%w: the Raw codec takes []byte or string (or pointers to them), not %T", ErrInvalidArgument, v)
}

// enter takes the read side of the close lock; it fails once the cache is
// closed. The caller must call c.closeMu.RUnlock.
func (c *Tiered) enter(what, key string) error {
	c.closeMu.RLock()
	if c.closed {
		c.closeMu.RUnlock()
		return fmt.Errorf("%w: %s %q", ErrClosed, what, key)
	}
	return nil
}

// usable reports whether tier s may be called now; a failed tier is skipped
// until its RetryAfter has passed.
func (c *Tiered) usable(s *tierState) bool {
	d := s.downUntil.Load()
	if d == 0 {
		return true
	}
	if c.now().UnixNano() >= d {
		return true // probe again
	}
	s.skipped.Add(1)
	return false
}

// fail records a tier error and marks the tier down for RetryAfter.
func (c *Tiered) fail(s *tierState, what, key string, err error) {
	s.errs.Add(1)
	now := c.now()
	wasUp := s.downUntil.Swap(now.Add(c.retryAfter).UnixNano()) == 0
	s.mu.Lock()
	s.lastErr = fmt.Sprintf("%s %q: %v", what, key, err)
	s.lastErrAt = now
	s.mu.Unlock()
	if wasUp {
		c.log.Warn("cache tier failing; serving from the other tiers", "tier", s.t.Name(), "op", what, "key", key, "err", err, "retry_after", c.retryAfter)
	}
}

// ok records a successful call of tier s, which ends a failure spell.
func (c *Tiered) ok(s *tierState) {
	if s.downUntil.Load() != 0 && s.downUntil.Swap(0) != 0 {
		c.log.Info("cache tier recovered", "tier", s.t.Name())
	}
}

// lookup reads through the tiers and promotes a hit to the tiers above.
func (c *Tiered) lookup(ctx context.Context, key string) (Entry, error) {
	now := c.now()
	for i, s := range c.tiers {
		if !c.usable(s) {
			continue
		}
		e, err := s.t.Get(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			c.ok(s)
			s.misses.Add(1)
			continue
		case err != nil:
			if ctx.Err() != nil {
				return Entry{}, ctx.Err()
			}
			c.fail(s, "get", key, err)
			continue
		case e.Key != key:
			// A driver bug or a hash collision: never hand out another
			// key's value.
			s.errs.Add(1)
			s.mu.Lock()
			s.lastErr = fmt.Sprintf("get %q: %v: the tier returned the entry of key %q", key, ErrCorrupt, e.Key)
			s.lastErrAt = now
			s.mu.Unlock()
			s.misses.Add(1)
			continue
		case e.Expired(now):
			s.misses.Add(1)
			continue
		}
		c.ok(s)
		s.hits.Add(1)
		for _, up := range c.tiers[:i] {
			if !c.usable(up) {
				continue
			}
			if err := up.t.Set(ctx, e); err != nil {
				c.fail(up, "promote", key, err)
			} else {
				c.ok(up)
				up.sets.Add(1)
			}
		}
		return e, nil
	}
	return Entry{}, fmt.Errorf("%w: key %q", ErrNotFound, key)
}

func checkDst(key string, dst any) error {
	if dst == nil {
		return fmt.Errorf("%w: key %q: destination is nil, want a non-nil pointer", ErrInvalidArgument, key)
	}
	if v := reflect.ValueOf(dst); v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("%w: key %q: destination is %T, want a non-nil pointer", ErrInvalidArgument, key, dst)
	}
	return nil
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// decode fills dst from a found entry.
func (c *Tiered) decode(e Entry, key string, dst any) error {
	if e.Negative {
		c.negHits.Add(1)
		return fmt.Errorf("%w: key %q (cached as not found)", ErrNotFound, key)
	}
	c.hits.Add(1)
	if err := c.codec.Unmarshal(e.Value, dst); err != nil {
		return fmt.Errorf("cache: decoding key %q into %T: %w", key, dst, err)
	}
	return nil
}

// Get implements Cache.
func (c *Tiered) Get(ctx context.Context, key string, dst any) error {
	if err := ValidateKey("key", key); err != nil {
		return err
	}
	if err := checkDst(key, dst); err != nil {
		return err
	}
	if err := c.enter("get", key); err != nil {
		return err
	}
	defer c.closeMu.RUnlock()
	e, err := c.lookup(ctx, key)
	if err != nil {
		c.misses.Add(1)
		return err
	}
	return c.decode(e, key, dst)
}

// entry encodes value into an Entry, checking every argument.
func (c *Tiered) entry(key string, value any, ttl time.Duration, tags []string) (Entry, error) {
	if err := ValidateKey("key", key); err != nil {
		return Entry{}, err
	}
	for _, t := range tags {
		if err := ValidateKey("tag", t); err != nil {
			return Entry{}, fmt.Errorf("key %q: %w", key, err)
		}
	}
	if ttl < 0 {
		return Entry{}, fmt.Errorf("%w: key %q: ttl = %v, must not be negative", ErrInvalidArgument, key, ttl)
	}
	if ttl == 0 {
		ttl = c.ttl
	}
	if isNil(value) {
		return Entry{}, fmt.Errorf("%w: key %q: value is %T(nil)", ErrNilValue, key, value)
	}
	b, err := c.codec.Marshal(value)
	if err != nil {
		return Entry{}, fmt.Errorf("cache: encoding %T for key %q: %w", value, key, err)
	}
	if len(b) > c.maxSize {
		return Entry{}, fmt.Errorf("%w: key %q: encoded value is %d bytes, the limit is %d", ErrTooLarge, key, len(b), c.maxSize)
	}
	return Entry{Key: key, Value: b, Expires: c.now().Add(ttl), Tags: slices.Compact(slices.Sorted(slices.Values(tags)))}, nil
}

// Set implements Cache. It fails only when the arguments are bad, the cache
// is closed, or no tier took the entry.
func (c *Tiered) Set(ctx context.Context, key string, value any, ttl time.Duration, tags ...string) error {
	e, err := c.entry(key, value, ttl, tags)
	if err != nil {
		return err
	}
	if err := c.enter("set", key); err != nil {
		return err
	}
	defer c.closeMu.RUnlock()
	return c.store(ctx, e)
}

// store writes e to the tiers according to the write mode.
func (c *Tiered) store(ctx context.Context, e Entry) error {
	var errs []error
	stored := 0
	for i, s := range c.tiers {
		if i > 0 && c.queue != nil {
			select {
			case c.queue <- op{e: &e}:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("cache: set %q: queueing the write-behind: %w", e.Key, ctx.Err())
			}
		}
		if !c.usable(s) {
			errs = append(errs, fmt.Errorf("%w: %s (failed recently)", ErrUnavailable, s.t.Name()))
			continue
		}
		if err := s.t.Set(ctx, e); err != nil {
			c.fail(s, "set", e.Key, err)
			errs = append(errs, fmt.Errorf("%s: %w", s.t.Name(), err))
			continue
		}
		c.ok(s)
		s.sets.Add(1)
		stored++
	}
	if stored == 0 {
		return fmt.Errorf("%w: set %q: no tier took the entry: %w", ErrUnavailable, e.Key, errors.Join(errs...))
	}
	return nil
}

// Delete implements Cache. The key is dropped from every reachable tier; an
// error wrapping ErrUnavailable reports tiers that could not be reached
// (they may keep the entry until it expires).
func (c *Tiered) Delete(ctx context.Context, key string) error {
	if err := ValidateKey("key", key); err != nil {
		return err
	}
	if err := c.enter("delete", key); err != nil {
		return err
	}
	defer c.closeMu.RUnlock()
	return c.invalidate(ctx, "delete", key, func(t Tier) error { return t.Delete(ctx, key) }, op{key: key})
}

// DeleteTag implements Cache: it drops every entry carrying tag from every
// reachable tier (see Delete for unreachable ones).
func (c *Tiered) DeleteTag(ctx context.Context, tag string) error {
	if err := ValidateKey("tag", tag); err != nil {
		return err
	}
	if err := c.enter("delete tag", tag); err != nil {
		return err
	}
	defer c.closeMu.RUnlock()
	return c.invalidate(ctx, "delete tag", tag, func(t Tier) error { return t.DeleteTag(ctx, tag) }, op{tag: tag})
}

func (c *Tiered) invalidate(ctx context.Context, what, arg string, fn func(Tier) error, queued op) error {
	var errs []error
	for i, s := range c.tiers {
		if i > 0 && c.queue != nil {
			queued.done = make(chan error, 1)
			select {
			case c.queue <- queued:
			case <-ctx.Done():
				return errors.Join(append(errs, fmt.Errorf("cache: %s %q: %w", what, arg, ctx.Err()))...)
			}
			select {
			case err := <-queued.done:
				errs = append(errs, err)
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("cache: %s %q: %w", what, arg, ctx.Err()))
			}
			break
		}
		errs = append(errs, c.invalidateTier(s, what, arg, fn))
	}
	return errors.Join(errs...)
}

func (c *Tiered) invalidateTier(s *tierState, what, arg string, fn func(Tier) error) error {
	if !c.usable(s) {
		return fmt.Errorf("%w: %s %q: tier %s failed recently", ErrUnavailable, what, arg, s.t.Name())
	}
	if err := fn(s.t); err != nil {
		c.fail(s, what, arg, err)
		return fmt.Errorf("%w: %s %q on tier %s: %w", ErrUnavailable, what, arg, s.t.Name(), err)
	}
	c.ok(s)
	s.deletes.Add(1)
	return nil
}

// writeBehind applies queued operations to the tiers after the first.
func (c *Tiered) writeBehind() {
	defer close(c.drained)
	ctx := context.Background()
	for o := range c.queue {
		var errs []error
		for _, s := range c.tiers[1:] {
			switch {
			case o.e != nil:
				if !c.usable(s) {
					continue
				}
				if err := s.t.Set(ctx, *o.e); err != nil {
					c.fail(s, "set", o.e.Key, err)
				} else {
					c.ok(s)
					s.sets.Add(1)
				}
			case o.tag != "":
				errs = append(errs, c.invalidateTier(s, "delete tag", o.tag, func(t Tier) error { return t.DeleteTag(ctx, o.tag) }))
			default:
				errs = append(errs, c.invalidateTier(s, "delete", o.key, func(t Tier) error { return t.Delete(ctx, o.key) }))
			}
		}
		if o.done != nil {
			o.done <- errors.Join(errs...)
		}
	}
}

// Loader computes the value of a missing key. Returning an error wrapping
// ErrNotFound caches the absence for Config.NegativeTTL.
type Loader func(ctx context.Context, key string) (any, error)

// LoadOptions give the TTL and tags of a loaded value. A nil *LoadOptions
// means the cache's default TTL and no tags.
type LoadOptions struct {
	// TTL of the loaded value (zero: Config.DefaultTTL).
	TTL time.Duration
	// Tags of the loaded value (and of a cached "not found").
	Tags []string
}

// GetOrLoad decodes the value of key into dst; on a miss it calls load once,
// however many goroutines ask for key at the same moment, stores the result
// in every tier and decodes it into each caller's dst. The loader runs
// detached from ctx (bounded by Config.LoadTimeout) so one caller giving up
// does not fail the others; GetOrLoad itself returns when ctx ends.
func (c *Tiered) GetOrLoad(ctx context.Context, key string, dst any, load Loader, opt *LoadOptions) error {
	if err := ValidateKey("key", key); err != nil {
		return err
	}
	if err := checkDst(key, dst); err != nil {
		return err
	}
	if load == nil {
		return fmt.Errorf("%w: GetOrLoad %q: nil loader", ErrInvalidArgument, key)
	}
	var o LoadOptions
	if opt != nil {
		o = *opt
	}
	if o.TTL < 0 {
		return fmt.Errorf("%w: GetOrLoad %q: LoadOptions.TTL = %v, must not be negative", ErrInvalidArgument, key, o.TTL)
	}
	for _, t := range o.Tags {
		if err := ValidateKey("tag", t); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
	if err := c.enter("get", key); err != nil {
		return err
	}
	e, err := c.lookup(ctx, key)
	c.closeMu.RUnlock()
	if err == nil {
		return c.decode(e, key, dst)
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	c.misses.Add(1)
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.loadTO)
	ch := c.sf.DoChan(key, func() (any, error) {
		defer cancel()
		return c.loadOnce(lctx, key, load, o)
	})
	select {
	case r := <-ch:
		if r.Shared {
			c.shr.Add(1)
		}
		if r.Err != nil {
			return r.Err
		}
		e := r.Val.(Entry)
		if e.Negative {
			return fmt.Errorf("%w: key %q (loader)", ErrNotFound, key)
		}
		if err := c.codec.Unmarshal(e.Value, dst); err != nil {
			return fmt.Errorf("cache: decoding key %q into %T: %w", key, dst, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cache: waiting for the load of %q: %w", key, ctx.Err())
	}
}

// loadOnce runs inside the singleflight: it checks the tiers again (a load
// that finished a moment ago has stored the value), then calls the loader.
func (c *Tiered) loadOnce(ctx context.Context, key string, load Loader, o LoadOptions) (_ any, err error) {
	if err := c.enter("load", key); err != nil {
		return nil, err
	}
	defer c.closeMu.RUnlock()
	if e, err := c.lookup(ctx, key); err == nil {
		return e, nil
	}
	c.loads.Add(1)
	defer func() {
		if r := recover(); r != nil {
			c.loadErrs.Add(1)
			err = fmt.Errorf("cache: loader of %q panicked: %v\n%s", key, r, debug.Stack())
		}
	}()
	v, err := load(ctx, key)
	if errors.Is(err, ErrNotFound) {
		neg := Entry{Key: key, Value: []byte{}, Negative: true, Expires: c.now().Add(c.negTTL), Tags: o.Tags}
		if c.negTTL > 0 {
			if serr := c.store(ctx, neg); serr != nil {
				c.log.Warn("cache: storing a negative entry failed", "key", key, "err", serr)
			}
		}
		return neg, nil
	}
	if err != nil {
		c.loadErrs.Add(1)
		return nil, fmt.Errorf("cache: loading %q: %w", key, err)
	}
	e, err := c.entry(key, v, o.TTL, o.Tags)
	if err != nil {
		c.loadErrs.Add(1)
		return nil, fmt.Errorf("cache: the loader of %q returned an unusable value: %w", key, err)
	}
	if err := c.store(ctx, e); err != nil {
		c.log.Warn("cache: storing a loaded value failed", "key", key, "err", err)
	}
	return e, nil
}

// Load is the typed form of GetOrLoad.
func Load[T any](ctx context.Context, c *Tiered, key string, load func(ctx context.Context) (T, error), opt *LoadOptions) (T, error) {
	var v T
	if load == nil {
		return v, fmt.Errorf("%w: Load %q: nil loader", ErrInvalidArgument, key)
	}
	err := c.GetOrLoad(ctx, key, &v, func(ctx context.Context, _ string) (any, error) {
		x, err := load(ctx)
		if err != nil {
			return nil, err
		}
		return x, nil
	}, opt)
	return v, err
}

// Tiers returns the tiers in read order.
func (c *Tiered) Tiers() []Tier {
	out := make([]Tier, len(c.tiers))
	for i, s := range c.tiers {
		out[i] = s.t
	}
	return out
}

// Close drains the write-behind queue and closes every tier. Later calls
// fail with ErrClosed; Close is idempotent.
func (c *Tiered) Close() error {
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		return nil
	}
	c.closed = true
	c.closeMu.Unlock()
	if c.queue != nil {
		close(c.queue)
		<-c.drained
	}
	var errs []error
	for _, s := range c.tiers {
		if err := s.t.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cache: closing tier %s: %w", s.t.Name(), err))
		}
	}
	return errors.Join(errs...)
}
