// Package cacheevents invalidates cache entries from the event bus: when a
// job changes state, the entries tagged with the job's id (cache.JobTag) are
// dropped. It joins the cache and events packages, which do not import each
// other.
package cacheevents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/events"
)

// Deleter is the part of a cache the invalidator uses; *cache.Tiered and
// every cache.Cache implement it.
type Deleter interface {
	DeleteTag(ctx context.Context, tag string) error
}

// Config configures New. A nil *Config means the defaults.
type Config struct {
	// Types are the event types that invalidate (default: every type
	// starting with "job.", progress included, since a cached job read
	// shows its progress).
	Types []events.Type
	// Tag maps an event's subject (the job id) to the tag to drop (default
	// cache.JobTag).
	Tag func(subject string) string
	// Logger receives one debug line per invalidation (default
	// slog.Default()).
	Logger *slog.Logger
	// IgnoreUnavailable makes Handle log and count, instead of return, an
	// error wrapping cache.ErrUnavailable (the reachable tiers dropped the
	// entries; an unreachable one keeps them until they expire). Set it
	// when the cached values cannot go stale (e.g. final job states), so a
	// Redis outage does not hold up the event stream with retries.
	IgnoreUnavailable bool
}

// Invalidator is an events consumer that drops a job's cache entries.
type Invalidator struct {
	c     Deleter
	types map[events.Type]bool
	tag   func(string) string
	log   *slog.Logger
	lax   bool
	n     atomic.Uint64
	part  atomic.Uint64
}

// New returns an invalidator of c. Register Handler() on a router for the
// jobs topic (events.TopicJobs).
func New(c Deleter, cfg *Config) (*Invalidator, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: cacheevents.New: nil cache", cache.ErrInvalidArgument)
	}
	i := &Invalidator{c: c, tag: cache.JobTag, log: slog.Default()}
	if cfg != nil {
		if len(cfg.Types) > 0 {
			i.types = map[events.Type]bool{}
			for _, t := range cfg.Types {
				i.types[t] = true
			}
		}
		if cfg.Tag != nil {
			i.tag = cfg.Tag
		}
		if cfg.Logger != nil {
			i.log = cfg.Logger
		}
		i.lax = cfg.IgnoreUnavailable
	}
	return i, nil
}

// Handle drops the entries of the event's job. An error (a cache tier that
// could not be reached) makes the router retry the event.
func (i *Invalidator) Handle(ctx context.Context, e events.Event) error {
	if e.Subject == "" {
		return nil
	}
	if i.types != nil && !i.types[e.Type] || i.types == nil && !strings.HasPrefix(string(e.Type), "job.") {
		return nil
	}
	tag := i.tag(e.Subject)
	if err := i.c.DeleteTag(ctx, tag); err != nil {
		if i.lax && errors.Is(err, cache.ErrUnavailable) {
			i.part.Add(1)
			i.n.Add(1)
			i.log.Warn("cache entries of job dropped from the reachable tiers only", "job", e.Subject, "event", e.Type, "tag", tag, "err", err)
			return nil
		}
		return fmt.Errorf("cacheevents: %s of %s: dropping tag %q: %w", e.Type, e.Subject, tag, err)
	}
	i.n.Add(1)
	i.log.Debug("cache entries of job dropped", "job", e.Subject, "event", e.Type, "tag", tag)
	return nil
}

// Handler returns Handle as an events.HandlerFunc.
func (i *Invalidator) Handler() events.HandlerFunc { return i.Handle }

// Invalidations is the number of tag deletions done.
func (i *Invalidator) Invalidations() uint64 { return i.n.Load() }

// Partial is the number of those that reached only some tiers
// (IgnoreUnavailable).
func (i *Invalidator) Partial() uint64 { return i.part.Load() }
