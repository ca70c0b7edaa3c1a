package cache

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats is a snapshot of a Tiered cache's counters since it was created.
type Stats struct {
	// Hits and Misses count Get and GetOrLoad calls answered from a tier or
	// not; NegativeHits count hits on a cached "not found".
	Hits, Misses, NegativeHits uint64
	// Loads counts loader calls; LoadErrors those that failed; SharedLoads
	// the callers that waited for another caller's load instead of loading.
	Loads, LoadErrors, SharedLoads uint64
	// Tiers holds one entry per tier, in read order.
	Tiers []TierStats
}

// HitRate is Hits / (Hits + Misses), or 0 before any lookup.
func (s Stats) HitRate() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// TierStats are the counters of one tier.
type TierStats struct {
	Name string `json:"name"`
	// Hits and Misses count reads of this tier.
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	// Sets counts writes, including promotions; Deletes key and tag
	// deletions.
	Sets    uint64 `json:"sets"`
	Deletes uint64 `json:"deletes"`
	// Errors counts failed calls and entries that did not belong to the
	// key asked for; Skipped the calls not made because the tier had
	// failed within Config.RetryAfter.
	Errors  uint64 `json:"errors"`
	Skipped uint64 `json:"skipped"`
	// Evictions counts entries the tier evicted for capacity (tiers that
	// implement EvictionCounter).
	Evictions uint64 `json:"evictions"`
	// Healthy is false while the tier is left alone after a failure.
	Healthy bool `json:"healthy"`
	// LastError and LastErrorAt describe the latest failure.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Stats returns a snapshot of the counters.
func (c *Tiered) Stats() Stats {
	s := Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), NegativeHits: c.negHits.Load(),
		Loads: c.loads.Load(), LoadErrors: c.loadErrs.Load(), SharedLoads: c.shr.Load()}
	now := c.now().UnixNano()
	for _, t := range c.tiers {
		ts := TierStats{Name: t.t.Name(), Hits: t.hits.Load(), Misses: t.misses.Load(), Sets: t.sets.Load(),
			Deletes: t.deletes.Load(), Errors: t.errs.Load(), Skipped: t.skipped.Load()}
		d := t.downUntil.Load()
		ts.Healthy = d == 0 || now >= d
		if ec, ok := t.t.(EvictionCounter); ok {
			ts.Evictions = ec.Evictions()
		}
		t.mu.Lock()
		ts.LastError, ts.LastErrorAt = t.lastErr, t.lastErrAt
		t.mu.Unlock()
		s.Tiers = append(s.Tiers, ts)
	}
	return s
}

// collector exports Stats as Prometheus metrics.
type collector struct {
	c                                       *Tiered
	hits, misses, neg, loads, loadErrs, shr *prometheus.Desc
	tHits, tMiss, tSets, tDel, tErr, tSkip  *prometheus.Desc
	tEvict, tUp                             *prometheus.Desc
}

// NewCollector returns a Prometheus collector of c's stats; the caller
// registers it. name becomes the constant label cache="name", so several
// caches can share a registry. Metrics: horizons_cache_{hits,misses,
// negative_hits,loads,load_errors,shared_loads}_total and, labelled by
// tier, horizons_cache_tier_{hits,misses,sets,deletes,errors,skipped,
// evictions}_total and horizons_cache_tier_up.
func NewCollector(c *Tiered, name string) prometheus.Collector {
	cl := prometheus.Labels{"cache": name}
	d := func(n, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("horizons_cache_"+n, help, labels, cl)
	}
	return &collector{c: c,
		hits:     d("hits_total", "Lookups answered from a tier."),
		misses:   d("misses_total", "Lookups no tier answered."),
		neg:      d("negative_hits_total", "Lookups answered by a cached not-found."),
		loads:    d("loads_total", "Loader calls."),
		loadErrs: d("load_errors_total", "Loader calls that failed."),
		shr:      d("shared_loads_total", "Callers that waited for another caller's load."),
		tHits:    d("tier_hits_total", "Reads a tier answered.", "tier"),
		tMiss:    d("tier_misses_total", "Reads a tier did not answer.", "tier"),
		tSets:    d("tier_sets_total", "Writes to a tier, promotions included.", "tier"),
		tDel:     d("tier_deletes_total", "Key and tag deletions on a tier.", "tier"),
		tErr:     d("tier_errors_total", "Failed tier calls.", "tier"),
		tSkip:    d("tier_skipped_total", "Calls skipped while a tier was failing.", "tier"),
		tEvict:   d("tier_evictions_total", "Entries a tier evicted for capacity.", "tier"),
		tUp:      d("tier_up", "1 when the tier is in use, 0 while it is left alone after a failure.", "tier"),
	}
}

// Describe implements prometheus.Collector.
func (k *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{k.hits, k.misses, k.neg, k.loads, k.loadErrs, k.shr, k.tHits, k.tMiss, k.tSets, k.tDel, k.tErr, k.tSkip, k.tEvict, k.tUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (k *collector) Collect(ch chan<- prometheus.Metric) {
	s := k.c.Stats()
	cnt := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	cnt(k.hits, s.Hits)
	cnt(k.misses, s.Misses)
	cnt(k.neg, s.NegativeHits)
	cnt(k.loads, s.Loads)
	cnt(k.loadErrs, s.LoadErrors)
	cnt(k.shr, s.SharedLoads)
	for _, t := range s.Tiers {
		cnt(k.tHits, t.Hits, t.Name)
		cnt(k.tMiss, t.Misses, t.Name)
		cnt(k.tSets, t.Sets, t.Name)
		cnt(k.tDel, t.Deletes, t.Name)
		cnt(k.tErr, t.Errors, t.Name)
		cnt(k.tSkip, t.Skipped, t.Name)
		cnt(k.tEvict, t.Evictions, t.Name)
		up := 0.0
		if t.Healthy {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(k.tUp, prometheus.GaugeValue, up, t.Name)
	}
}
