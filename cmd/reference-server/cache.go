package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/blobcache"
	"github.com/cosmic-horizons/horizons/cache/cacheevents"
	"github.com/cosmic-horizons/horizons/cache/rediscache"
	"github.com/cosmic-horizons/horizons/ephemeris/ephemhttp"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// Cache settings: environment variables, sizes, TTLs and warming periods.
const (
	envCacheRedis = "HORIZONS_CACHE_REDIS"
	envCacheDir   = "HORIZONS_CACHE_DIR"

	cacheMemoryBytes = 64 << 20
	cacheRedisPrefix = "horizons:cache:"
	// Completed and cancelled jobs never change again: their reads are
	// cached for jobCacheTTL (and dropped by their events all the same).
	jobCacheTTL = time.Hour
	// The ephemeris warmer keeps the positions of the bodies at 00:00 UTC
	// for the next ephemWarmDays days, at the VLA, refreshed every
	// ephemWarmPeriod (answers live for the handler's 24 h).
	ephemWarmDays   = 8
	ephemWarmPeriod = 6 * time.Hour
	// The job warmer keeps the most recent completed jobs.
	jobWarmCount  = 50
	jobWarmPeriod = 5 * time.Minute

	consumerCache = "cache"
	groupCache    = "horizons-cache"
)

// warmBodies are the bodies whose positions are warmed.
var warmBodies = []string{"sun", "moon", "mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune"}

// cacheFlags registers -cache-redis and -cache-dir. The Redis URL's default
// is not shown by -h (it may hold a password); it is taken from the
// environment after parsing, in setCacheConfig.
func cacheFlags(fs *flag.FlagSet) (redisURL, dir *string) {
	redisURL = fs.String("cache-redis", "", "Redis URL of the shared cache tier, redis://[user:password@]host:port/db; the in-process tier stays in front (env "+envCacheRedis+"; default: in-process only)")
	dir = fs.String("cache-dir", "", "directory of the on-disk cache tier behind the others (env "+envCacheDir+"; default: none)")
	return redisURL, dir
}

// setCacheConfig merges the cache flags with the environment and checks
// them; errors name the flag or variable and never show a password.
func (cfg *config) setCacheConfig(redisFlag, dirFlag string, getenv func(string) string) error {
	var errs []error
	name := "-cache-redis"
	cfg.CacheRedis = strings.TrimSpace(redisFlag)
	if cfg.CacheRedis == "" {
		cfg.CacheRedis, name = strings.TrimSpace(getenv(envCacheRedis)), envCacheRedis
	}
	if cfg.CacheRedis != "" {
		if err := rediscache.CheckURL(cfg.CacheRedis); err != nil {
			errs = append(errs, fmt.Errorf("%s = %q: %w", name, rediscache.Redact(cfg.CacheRedis), err))
		}
	}
	cfg.CacheDir = strings.TrimSpace(dirFlag)
	if cfg.CacheDir == "" {
		cfg.CacheDir = strings.TrimSpace(getenv(envCacheDir))
	}
	return errors.Join(errs...)
}

// cacheSystem is the server's cache: tiers, the event invalidator and the
// warmers.
type cacheSystem struct {
	c       *cache.Tiered
	inv     *cacheevents.Invalidator
	tiers   []string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	reports map[string]warmReportJSON
}

// openCache builds the tiers (in-process, then Redis and disk when
// configured), registers the cache's metrics and the invalidator.
func (s *server) openCache(ctx context.Context) error {
	cs := &cacheSystem{reports: map[string]warmReportJSON{}}
	log := s.log.With("component", "cache")
	mem, err := cache.NewMemory(&cache.MemoryConfig{MaxBytes: cacheMemoryBytes})
	if err != nil {
		return err
	}
	tiers := []cache.Tier{mem}
	cs.tiers = []string{fmt.Sprintf("memory (%d MiB)", cacheMemoryBytes>>20)}
	if s.cfg.CacheRedis != "" {
		redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
		rt, err := rediscache.Open(s.cfg.CacheRedis, &rediscache.Config{Prefix: cacheRedisPrefix})
		if err != nil {
			return fmt.Errorf("-cache-redis: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := rt.Ping(pctx); err != nil {
			// Not fatal: the cache serves from the other tiers and
			// retries Redis.
			log.Warn("cache Redis unreachable at start; serving from the other tiers until it answers", "redis", rediscache.Redact(s.cfg.CacheRedis), "err", err)
		}
		cancel()
		tiers = append(tiers, rt)
		cs.tiers = append(cs.tiers, "redis "+rediscache.Redact(s.cfg.CacheRedis))
	}
	if s.cfg.CacheDir != "" {
		dt, err := blobcache.OpenDir(s.cfg.CacheDir, nil)
		if err != nil {
			return fmt.Errorf("-cache-dir: %w", err)
		}
		tiers = append(tiers, dt)
		cs.tiers = append(cs.tiers, "disk "+s.cfg.CacheDir)
	}
	if cs.c, err = cache.New(tiers, &cache.Config{Logger: log}); err != nil {
		return err
	}
	s.caches = cs
	if cs.inv, err = cacheevents.New(cs.c, &cacheevents.Config{Logger: log, IgnoreUnavailable: true}); err != nil {
		return err
	}
	if err := s.metrics.reg.Register(cache.NewCollector(cs.c, "server")); err != nil {
		return fmt.Errorf("cache metrics: %w", err)
	}
	log.Info("cache ready", "tiers", strings.Join(cs.tiers, ", "))
	return nil
}

// redisLogOnce routes go-redis's own log lines (one per failed dial) to
// slog at debug level instead of stderr; the cache reports the failures in
// its stats and logs.
var redisLogOnce sync.Once

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().Log(ctx, slog.LevelDebug, "go-redis: "+fmt.Sprintf(format, v...))
}

// ephemerisCache is the cache the ephemeris handler uses (nil before
// openCache, in which case answers are not cached).
func (s *server) ephemerisCache() ephemhttp.Cache {
	if s.caches == nil {
		return nil
	}
	return s.caches.c
}

// startCacheWarmers runs the ephemeris and recent-jobs warmers until
// closeCache.
func (s *server) startCacheWarmers(ctx context.Context) error {
	cs := s.caches
	if cs == nil {
		return nil
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cs.cancel = cancel
	ephem := ephemhttp.NewHandler(&ephemhttp.Config{Logger: s.log.With("component", "ephemeris")})
	ew, err := cache.NewWarmer(cs.c, cache.WarmerConfig{
		Keys:        func(context.Context) ([]string, error) { return ephemerisWarmKeys(time.Now()), nil },
		Load:        func(_ context.Context, key string) (any, error) { return ephemerisAnswer(ephem, key) },
		Period:      ephemWarmPeriod,
		TTL:         24 * time.Hour,
		Tags:        func(string) []string { return []string{ephemhttp.CacheTag} },
		OnlyMissing: true,
		Logger:      s.log.With("component", "cache", "warmer", "ephemeris"),
	})
	if err != nil {
		return err
	}
	jw, err := cache.NewWarmer(cs.c, cache.WarmerConfig{
		Keys: func(ctx context.Context) ([]string, error) {
			page, err := s.orch.List(ctx, orchestrator.ListQuery{States: []orchestrator.State{orchestrator.StateCompleted}, Limit: jobWarmCount})
			if err != nil {
				return nil, err
			}
			keys := make([]string, len(page.Jobs))
			for i, j := range page.Jobs {
				keys[i] = jobCacheKey(j.ID)
			}
			return keys, nil
		},
		Load: func(ctx context.Context, key string) (any, error) {
			j, err := s.orch.Get(ctx, strings.TrimPrefix(key, "job:"))
			if err != nil {
				return nil, err
			}
			if !jobFinal(j) {
				return nil, fmt.Errorf("job %s is %s, not final", j.ID, j.State)
			}
			return toJobJSON(j), nil
		},
		Period:      jobWarmPeriod,
		TTL:         jobCacheTTL,
		Tags:        func(key string) []string { return []string{cache.JobTag(strings.TrimPrefix(key, "job:"))} },
		OnlyMissing: true,
		Logger:      s.log.With("component", "cache", "warmer", "jobs"),
	})
	if err != nil {
		return err
	}
	for name, w := range map[string]*cache.Warmer{"ephemeris": ew, "recent_jobs": jw} {
		cs.wg.Go(func() { cs.runWarmer(wctx, name, w) })
	}
	return nil
}

// warmReportJSON is the last round of a warmer, for the admin endpoint.
type warmReportJSON struct {
	At      time.Time `json:"at"`
	Keys    int       `json:"keys"`
	Loaded  int       `json:"loaded"`
	Skipped int       `json:"skipped"`
	Failed  int       `json:"failed"`
	Error   string    `json:"error,omitempty"`
}

func (cs *cacheSystem) runWarmer(ctx context.Context, name string, w *cache.Warmer) {
	period := map[string]time.Duration{"ephemeris": ephemWarmPeriod, "recent_jobs": jobWarmPeriod}[name]
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		r := w.WarmOnce(ctx)
		rep := warmReportJSON{At: time.Now().UTC(), Keys: r.Keys, Loaded: r.Loaded, Skipped: r.Skipped, Failed: r.Failed}
		if r.Err != nil {
			rep.Error = r.Err.Error()
		}
		cs.mu.Lock()
		cs.reports[name] = rep
		cs.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ephemerisWarmKeys lists the cache keys of the warmed positions.
func ephemerisWarmKeys(now time.Time) []string {
	day := now.UTC().Truncate(24 * time.Hour)
	var keys []string
	for d := range ephemWarmDays {
		at := day.AddDate(0, 0, d).Format(time.RFC3339)
		for _, b := range warmBodies {
			r := httptest.NewRequest(http.MethodGet, ephemhttp.Prefix+"position?body="+b+"&site=vla&time="+at, nil)
			keys = append(keys, ephemhttp.CacheKey(r))
		}
	}
	return keys
}

// ephemerisAnswer computes the answer of a cache key made by
// ephemhttp.CacheKey, with a handler that has no cache.
func ephemerisAnswer(h http.Handler, key string) (any, error) {
	rest, ok := strings.CutPrefix(key, "ephemeris:")
	if !ok {
		return nil, fmt.Errorf("not an ephemeris cache key: %q", key)
	}
	path, query, _ := strings.Cut(rest, "?")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, ephemhttp.Prefix+path+"?"+query, nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("ephemeris %s: HTTP %d: %s", path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return json.RawMessage(rec.Body.Bytes()), nil
}

func jobCacheKey(id string) string { return "job:" + id }

// jobFinal reports whether a job can no longer change (a failed job may be
// retried, so it is not final).
func jobFinal(j *orchestrator.Job) bool {
	return j.State == orchestrator.StateCompleted || j.State == orchestrator.StateCancelled
}

// handleGetJobCached serves GET /api/v1/jobs/{id}: final jobs come from the
// cache (X-Cache: HIT), the others from the store.
func (s *server) handleGetJobCached(w http.ResponseWriter, r *http.Request, u *user) {
	if s.caches == nil {
		s.handleGetJob(w, r, u)
		return
	}
	id := r.PathValue("id")
	var cached jobJSON
	if err := s.caches.c.Get(r.Context(), jobCacheKey(id), &cached); err == nil && cached.ID == id {
		if !u.isAdmin() && cached.Owner != u.ID {
			s.writeError(w, r, notFound("job", id))
			return
		}
		w.Header().Set("X-Cache", "HIT")
		writeJSON(w, http.StatusOK, cached)
		return
	}
	j, err := s.ownedJob(r.Context(), u, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := toJobJSON(j)
	if jobFinal(j) {
		if err := s.caches.c.Set(r.Context(), jobCacheKey(id), out, jobCacheTTL, cache.JobTag(id)); err != nil {
			s.log.Warn("job read not cached", "job", id, "err", err)
		}
	}
	w.Header().Set("X-Cache", "MISS")
	writeJSON(w, http.StatusOK, out)
}

// backendUsageTTL is how long a backend's GPU usage is reused: the
// dashboard polls it from every open browser, and on Slurm or Tapis each
// poll is a remote call; concurrent polls share one call as well.
const backendUsageTTL = time.Second

// backendUsage returns b.Usage through the cache.
func (s *server) backendUsage(ctx context.Context, b *backends.Backend) ([]backends.GPUUsage, error) {
	if s.caches == nil {
		return b.Usage(ctx)
	}
	return cache.Load(ctx, s.caches.c, "backend-usage:"+b.Name(), func(ctx context.Context) ([]backends.GPUUsage, error) {
		g, err := b.Usage(ctx)
		if err == nil && g == nil {
			g = []backends.GPUUsage{}
		}
		return g, err
	}, &cache.LoadOptions{TTL: backendUsageTTL})
}

// cacheRoutes adds GET /api/v1/admin/cache.
func (s *server) cacheRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/admin/cache", s.admin(s.handleCacheStats))
}

// cacheStatsJSON is the answer of GET /api/v1/admin/cache.
type cacheStatsJSON struct {
	Tiers        []string                  `json:"tiers"`
	Hits         uint64                    `json:"hits"`
	Misses       uint64                    `json:"misses"`
	NegativeHits uint64                    `json:"negative_hits"`
	HitRate      float64                   `json:"hit_rate"`
	Loads        uint64                    `json:"loads"`
	LoadErrors   uint64                    `json:"load_errors"`
	SharedLoads  uint64                    `json:"shared_loads"`
	TierStats    []cache.TierStats         `json:"tier_stats"`
	Warmers      map[string]warmReportJSON `json:"warmers"`
	Invalidated  uint64                    `json:"invalidated_by_events"`
	// PartialInvalidations reached only the tiers that were up.
	PartialInvalidations uint64 `json:"partial_invalidations"`
}

// handleCacheStats serves GET /api/v1/admin/cache: hits, misses, loads,
// evictions and errors per tier, and the warmers' last rounds.
func (s *server) handleCacheStats(w http.ResponseWriter, r *http.Request, _ *user) {
	cs := s.caches
	if cs == nil {
		s.writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the cache is not running"})
		return
	}
	st := cs.c.Stats()
	out := cacheStatsJSON{Tiers: cs.tiers, Hits: st.Hits, Misses: st.Misses, NegativeHits: st.NegativeHits, HitRate: st.HitRate(),
		Loads: st.Loads, LoadErrors: st.LoadErrors, SharedLoads: st.SharedLoads, TierStats: st.Tiers,
		Warmers: map[string]warmReportJSON{}, Invalidated: cs.inv.Invalidations(), PartialInvalidations: cs.inv.Partial()}
	cs.mu.Lock()
	for k, v := range cs.reports {
		out.Warmers[k] = v
	}
	cs.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// closeCache stops the warmers and closes the tiers.
func (s *server) closeCache() error {
	cs := s.caches
	if cs == nil {
		return nil
	}
	if cs.cancel != nil {
		cs.cancel()
	}
	cs.wg.Wait()
	if err := cs.c.Close(); err != nil {
		return fmt.Errorf("close cache: %w", err)
	}
	return nil
}
