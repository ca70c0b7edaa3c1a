package ephemhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/ephemeris"
)

// Prefix is the path prefix every endpoint is served under.
const Prefix = "/api/v1/ephemeris/"

// Config configures the handler. A nil *Config means the defaults.
type Config struct {
	// Logger receives one debug line per failed request (default
	// slog.Default()).
	Logger *slog.Logger
	// MaxAge is the Cache-Control max-age of answers that depend only on
	// the query (default 24 h).
	MaxAge time.Duration
	// Now supplies the current time for queries that omit it (resolve of a
	// body); default time.Now.
	Now func() time.Time
	// Cache, when set, keeps the answers that depend only on the query
	// (never those that used "now") for MaxAge under CacheKey(r), as JSON.
	// *cache.Tiered of the cache package satisfies it. Answers served from
	// it carry X-Cache: HIT, computed ones X-Cache: MISS.
	Cache Cache
}

// Cache is what the handler needs of a cache (the cache package's Tiered
// cache implements it). Get returns an error for a miss.
type Cache interface {
	Get(ctx context.Context, key string, dst any) error
	Set(ctx context.Context, key string, value any, ttl time.Duration, tags ...string) error
}

// CacheTag tags every answer the handler caches, so one DeleteTag drops
// them all.
const CacheTag = "ephemeris"

// CacheKey is the cache key of an ephemeris request: the endpoint and the
// query parameters in sorted order.
func CacheKey(r *http.Request) string {
	return "ephemeris:" + strings.TrimPrefix(r.URL.Path, Prefix) + "?" + r.URL.Query().Encode()
}

type handler struct {
	log    *slog.Logger
	maxAge time.Duration
	now    func() time.Time
	cache  Cache
}

// NewHandler returns the REST handler for the ephemeris endpoints. Times
// are UTC with UT1 = UTC unless dut1 gives UT1−UTC in seconds, or
// dut1=iers takes it from the built-in IERS C04 series (as JPL Horizons
// does):
//
//	GET /api/v1/ephemeris/position      body, time, [site | lat, lon, height], [refraction, pressure, temperature, humidity], [dut1]
//	GET /api/v1/ephemeris/sidereal      time, [lon], [dut1]
//	GET /api/v1/ephemeris/julian        time, [dut1]
//	GET /api/v1/ephemeris/riseset       body, date, site | lat, lon, [height], [twilight]
//	GET /api/v1/ephemeris/convert       ra, dec (or lon, lat), from, to
//	GET /api/v1/ephemeris/moon          time
//	GET /api/v1/ephemeris/phases        from, to
//	GET /api/v1/ephemeris/observability ra, dec (or target), from, to, site | lat, lon, [min_alt], [sun_avoid], [moon_avoid]
//	GET /api/v1/ephemeris/resolve       target, [time]
func NewHandler(cfg *Config) http.Handler {
	h := &handler{log: slog.Default(), maxAge: 24 * time.Hour, now: time.Now}
	if cfg != nil {
		if cfg.Logger != nil {
			h.log = cfg.Logger
		}
		if cfg.MaxAge > 0 {
			h.maxAge = cfg.MaxAge
		}
		if cfg.Now != nil {
			h.now = cfg.Now
		}
		h.cache = cfg.Cache
	}
	mux := http.NewServeMux()
	for name, fn := range map[string]func(q query) (any, bool, error){
		"position":      h.position,
		"sidereal":      h.sidereal,
		"julian":        h.julian,
		"riseset":       h.riseset,
		"convert":       h.convert,
		"moon":          h.moon,
		"phases":        h.phases,
		"observability": h.observability,
		"resolve":       h.resolve,
	} {
		mux.HandleFunc("GET "+Prefix+name, h.wrap(fn))
	}
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errBody("not_found", "no such ephemeris endpoint: "+r.URL.Path, ""), "no-store")
	})
	return mux
}

// apiError is a 400 answer naming the offending field.
type apiError struct {
	field, msg string
}

// Error implements error.
func (e *apiError) Error() string { return e.field + ": " + e.msg }

func bad(field, format string, args ...any) error {
	return &apiError{field: field, msg: fmt.Sprintf(format, args...)}
}

func errBody(code, msg, field string) map[string]any {
	e := map[string]any{"code": code, "message": msg}
	if field != "" {
		e["field"] = field
	}
	return map[string]any{"error": e}
}

func writeJSON(w http.ResponseWriter, status int, v any, cache string) {
	b, err := json.Marshal(v)
	if err != nil {
		status, cache = http.StatusInternalServerError, "no-store"
		b, _ = json.Marshal(errBody("internal", "encoding the answer failed: "+err.Error(), ""))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cache)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func (h *handler) wrap(fn func(q query) (any, bool, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var key string
		if h.cache != nil {
			key = CacheKey(r)
			var raw json.RawMessage
			if err := h.cache.Get(r.Context(), key, &raw); err == nil && json.Valid(raw) {
				w.Header().Set("X-Cache", "HIT")
				writeJSON(w, http.StatusOK, raw, fmt.Sprintf("public, max-age=%d", int(h.maxAge.Seconds())))
				return
			}
			w.Header().Set("X-Cache", "MISS")
		}
		q := query{r.URL.Query()}
		v, usedNow, err := fn(q)
		if err != nil {
			field, msg := "", err.Error()
			var ae *apiError
			var fe *ephemeris.FieldError
			switch {
			case errors.As(err, &ae):
				field, msg = ae.field, ae.msg
			case errors.As(err, &fe):
				field = fe.Field
			default:
				h.log.Error("ephemeris request failed", "path", r.URL.Path, "err", err)
				writeJSON(w, http.StatusInternalServerError, errBody("internal", msg, ""), "no-store")
				return
			}
			h.log.Debug("ephemeris bad request", "path", r.URL.Path, "field", field, "err", msg)
			writeJSON(w, http.StatusBadRequest, errBody("invalid_argument", msg, field), "no-store")
			return
		}
		cache := fmt.Sprintf("public, max-age=%d", int(h.maxAge.Seconds()))
		if usedNow {
			cache = "public, max-age=60"
		} else if h.cache != nil {
			if b, err := json.Marshal(v); err == nil {
				if err := h.cache.Set(r.Context(), key, json.RawMessage(b), h.maxAge, CacheTag); err != nil {
					h.log.Warn("ephemeris answer not cached", "key", key, "err", err)
				}
			}
		}
		writeJSON(w, http.StatusOK, v, cache)
	}
}

// query wraps url.Values with typed, validating getters.
type query struct {
	v map[string][]string
}

func (q query) str(name string) string {
	if vs, ok := q.v[name]; ok && len(vs) > 0 {
		return strings.TrimSpace(vs[0])
	}
	return ""
}

func (q query) has(name string) bool { return q.str(name) != "" }

func (q query) required(name string) (string, error) {
	s := q.str(name)
	if s == "" {
		return "", bad(name, "%s is required", name)
	}
	return s, nil
}

func (q query) float(name string, def float64) (float64, error) {
	s := q.str(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, bad(name, "%q is not a number", s)
	}
	return v, nil
}

// angle parses degrees, or sexagesimal "hh:mm:ss" (hours when hours is
// true) / "±dd:mm:ss".
func (q query) angle(name string, hours bool) (float64, error) {
	s, err := q.required(name)
	if err != nil {
		return 0, err
	}
	if strings.Contains(s, ":") {
		parts := strings.Split(s, ":")
		if len(parts) != 3 {
			return 0, bad(name, "%q: want degrees or hh:mm:ss / dd:mm:ss", s)
		}
		neg := strings.HasPrefix(parts[0], "-")
		var v float64
		for i, p := range parts {
			x, err := strconv.ParseFloat(strings.TrimLeft(p, "+-"), 64)
			if err != nil || x < 0 || (i > 0 && x >= 60) {
				return 0, bad(name, "%q: malformed sexagesimal value", s)
			}
			v += x / math.Pow(60, float64(i))
		}
		if neg {
			v = -v
		}
		if hours {
			v *= 15
		}
		return v, nil
	}
	return q.float(name, 0)
}

func parseTime(field, s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < -2999 || t.Year() > 7999 {
				return time.Time{}, bad(field, "%q: year outside -3000..8000", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, bad(field, "%q is not an RFC 3339 time (e.g. 2024-06-21T12:00:00Z)", s)
}

func (q query) time(name string) (time.Time, error) {
	s, err := q.required(name)
	if err != nil {
		return time.Time{}, err
	}
	return parseTime(name, s)
}

func (q query) instant(name string) (time.Time, ephemeris.Time, error) {
	t, err := q.time(name)
	if err != nil {
		return t, ephemeris.Time{}, err
	}
	var cfg ephemeris.TimeConfig
	if q.str("dut1") == "iers" {
		cfg.UseIERS = true
	} else if q.has("dut1") {
		dut1, err := q.float("dut1", 0)
		if err != nil {
			return t, ephemeris.Time{}, err
		}
		cfg.DUT1 = &dut1
	}
	et, err := ephemeris.FromUTC(t, &cfg)
	return t, et, err
}

// site reads site=NAME or lat/lon[/height]; ok is false when none given.
func (q query) site(required bool) (ephemeris.Site, bool, error) {
	if q.has("site") {
		if q.has("lat") || q.has("lon") {
			return ephemeris.Site{}, false, bad("site", "give either site or lat/lon, not both")
		}
		s, err := ephemeris.SiteByName(q.str("site"))
		return s, err == nil, err
	}
	if !q.has("lat") && !q.has("lon") {
		if required {
			return ephemeris.Site{}, false, bad("site", "site (e.g. vla) or lat and lon are required")
		}
		return ephemeris.Site{}, false, nil
	}
	lat, err := q.float("lat", math.NaN())
	if err != nil {
		return ephemeris.Site{}, false, err
	}
	if math.IsNaN(lat) {
		return ephemeris.Site{}, false, bad("lat", "lat is required with lon")
	}
	lon, err := q.float("lon", math.NaN())
	if err != nil {
		return ephemeris.Site{}, false, err
	}
	if math.IsNaN(lon) {
		return ephemeris.Site{}, false, bad("lon", "lon is required with lat")
	}
	hgt, err := q.float("height", 0)
	if err != nil {
		return ephemeris.Site{}, false, err
	}
	s := ephemeris.Site{Name: "custom", LatDeg: lat, LonDeg: lon, HeightM: hgt}
	if err := s.Validate(); err != nil {
		return s, false, err
	}
	return s, true, nil
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func optTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := rfc(*t)
	return &s
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
