package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// WarmerConfig configures a Warmer. Keys and Load are required.
type WarmerConfig struct {
	// Keys lists the keys to warm at the start of each round (it may
	// depend on the time, e.g. the next 8 days).
	Keys func(ctx context.Context) ([]string, error)
	// Load computes the value of one key.
	Load Loader
	// Period between rounds (default 1 h). The first round runs at once.
	Period time.Duration
	// TTL and Tags of the warmed entries (TTL zero: the cache's default).
	TTL  time.Duration
	Tags func(key string) []string
	// OnlyMissing skips keys already cached instead of reloading them.
	OnlyMissing bool
	// Logger receives one line per round (default slog.Default()).
	Logger *slog.Logger
}

// WarmReport describes one warming round.
type WarmReport struct {
	Keys, Loaded, Skipped, Failed int
	// Err joins the failures (nil when none).
	Err error
}

// Warmer loads a set of keys into a cache on a schedule.
type Warmer struct {
	c   *Tiered
	cfg WarmerConfig
}

// NewWarmer returns a warmer of c; start it with Run.
func NewWarmer(c *Tiered, cfg WarmerConfig) (*Warmer, error) {
	if c == nil || cfg.Keys == nil || cfg.Load == nil {
		return nil, fmt.Errorf("%w: NewWarmer: the cache, WarmerConfig.Keys and WarmerConfig.Load are required", ErrInvalidArgument)
	}
	if cfg.Period < 0 || cfg.TTL < 0 {
		return nil, fmt.Errorf("%w: NewWarmer: Period (%v) and TTL (%v) must not be negative", ErrInvalidArgument, cfg.Period, cfg.TTL)
	}
	if cfg.Period == 0 {
		cfg.Period = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Warmer{c: c, cfg: cfg}, nil
}

// WarmOnce runs one round: it loads every key (or, with OnlyMissing, every
// key not cached) and stores it. A failing key does not stop the round.
func (w *Warmer) WarmOnce(ctx context.Context) WarmReport {
	var r WarmReport
	keys, err := w.cfg.Keys(ctx)
	if err != nil {
		r.Err = fmt.Errorf("cache: warmer: listing keys: %w", err)
		return r
	}
	r.Keys = len(keys)
	var errs []error
	for _, k := range keys {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if w.cfg.OnlyMissing {
			if err := w.c.enter("warm", k); err != nil {
				errs = append(errs, err)
				break
			}
			_, err := w.c.lookup(ctx, k)
			w.c.closeMu.RUnlock()
			if err == nil {
				r.Skipped++
				continue
			}
		}
		v, err := w.cfg.Load(ctx, k)
		if err != nil {
			r.Failed++
			errs = append(errs, fmt.Errorf("key %q: %w", k, err))
			continue
		}
		var tags []string
		if w.cfg.Tags != nil {
			tags = w.cfg.Tags(k)
		}
		if err := w.c.Set(ctx, k, v, w.cfg.TTL, tags...); err != nil {
			r.Failed++
			errs = append(errs, err)
			continue
		}
		r.Loaded++
	}
	r.Err = errors.Join(errs...)
	return r
}

// Run warms at once and then every Period until ctx ends; it returns
// ctx.Err().
func (w *Warmer) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Period)
	defer t.Stop()
	for {
		start := time.Now()
		r := w.WarmOnce(ctx)
		lvl := slog.LevelDebug
		if r.Err != nil {
			lvl = slog.LevelWarn
		}
		w.cfg.Logger.Log(ctx, lvl, "cache warmed", "keys", r.Keys, "loaded", r.Loaded, "skipped", r.Skipped, "failed", r.Failed, "took", time.Since(start), "err", r.Err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
