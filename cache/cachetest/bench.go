package cachetest

import (
	"container/list"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/cosmic-horizons/horizons/cache"
)

// Benchmark bodies shared by the packages' Go benchmarks and
// cmd/horizons-cachebench, which prints them side by side.

// benchKeys is the number of distinct keys the get/set benchmarks cycle
// through.
const benchKeys = 1024

func keys() []string {
	ks := make([]string, benchKeys)
	for i := range ks {
		ks[i] = "bench/key/" + strconv.Itoa(i)
	}
	return ks
}

// BenchTierGet measures Get of present keys on a tier.
func BenchTierGet(b *testing.B, t cache.Tier) {
	ctx := context.Background()
	ks := keys()
	val := make([]byte, 256)
	exp := time.Now().Add(time.Hour)
	for _, k := range ks {
		if err := t.Set(ctx, cache.Entry{Key: k, Value: val, Expires: exp}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := t.Get(ctx, ks[i%benchKeys]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchTierSet measures Set on a tier.
func BenchTierSet(b *testing.B, t cache.Tier) {
	ctx := context.Background()
	ks := keys()
	val := make([]byte, 256)
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := t.Set(ctx, cache.Entry{Key: ks[i%benchKeys], Value: val, Expires: exp}); err != nil {
			b.Fatal(err)
		}
	}
}

// rawOtter is otter configured as the Memory tier configures it (weight
// bound, per-entry expiry), storing the bytes directly.
func rawOtter() *otter.Cache[string, []byte] {
	return otter.Must(&otter.Options[string, []byte]{
		MaximumWeight:    cache.DefaultMemoryBytes,
		Weigher:          func(k string, v []byte) uint32 { return uint32(len(k) + len(v) + 96) },
		ExpiryCalculator: otter.ExpiryWriting[string, []byte](time.Hour),
	})
}

// BenchOtterGet measures the raw library underneath the Memory tier.
func BenchOtterGet(b *testing.B) {
	c := rawOtter()
	defer c.StopAllGoroutines()
	ks := keys()
	val := make([]byte, 256)
	for _, k := range ks {
		c.Set(k, val)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := c.GetIfPresent(ks[i%benchKeys]); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchOtterSet measures raw otter Set.
func BenchOtterSet(b *testing.B) {
	c := rawOtter()
	defer c.StopAllGoroutines()
	ks := keys()
	val := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Set(ks[i%benchKeys], val)
	}
}

// BenchTieredGet measures a whole Tiered Get (key checks, tier read, JSON
// decoding of a small struct) over one Memory tier.
func BenchTieredGet(b *testing.B) {
	c, err := cache.NewMemoryCache(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	type pos struct{ RA, Dec float64 }
	ks := keys()
	for _, k := range ks {
		_ = c.Set(ctx, k, pos{1, 2}, time.Hour)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var p pos
	for i := 0; b.Loop(); i++ {
		if err := c.Get(ctx, ks[i%benchKeys], &p); err != nil {
			b.Fatal(err)
		}
	}
}

// Latencies times n calls of op and returns the durations sorted.
func Latencies(n int, op func() error) ([]time.Duration, error) {
	d := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := op(); err != nil {
			return nil, err
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	return d, nil
}

// Percentile returns the p-th percentile (0..100) of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)-1))
	return sorted[i]
}

// Op is one request of a replayed workload.
type Op struct {
	Key   string
	Write bool
}

// ZipfWorkload returns a deterministic mixed workload of n requests: a
// scanFrac share reads keys never seen before (one-hit wonders, as a
// crawler or a sweep over a survey makes), the rest go to keys keys drawn
// from a Zipf distribution of exponent s (> 1), a writeFrac share of them
// writes.
func ZipfWorkload(seed uint64, n, keys int, s, writeFrac, scanFrac float64) []Op {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	z := rand.NewZipf(r, s, 1, uint64(keys-1))
	ops := make([]Op, n)
	for i := range ops {
		if r.Float64() < scanFrac {
			ops[i] = Op{Key: fmt.Sprintf("scan/%d", i)}
			continue
		}
		ops[i] = Op{Key: fmt.Sprintf("obj/%d", z.Uint64()), Write: r.Float64() < writeFrac}
	}
	return ops
}

// ReplayHitRate replays ops on c: a read is GetOrLoad (the loader makes a
// value of valueSize bytes), a write is Set. It returns the read hit rate.
func ReplayHitRate(ctx context.Context, c *cache.Tiered, ops []Op, valueSize int) (float64, error) {
	val := make([]byte, valueSize)
	load := func(context.Context, string) (any, error) { return val, nil }
	var dst []byte
	before := c.Stats()
	for _, o := range ops {
		if o.Write {
			if err := c.Set(ctx, o.Key, val, time.Hour); err != nil {
				return 0, err
			}
			continue
		}
		if err := c.GetOrLoad(ctx, o.Key, &dst, load, nil); err != nil {
			return 0, err
		}
	}
	s := c.Stats()
	h, m := s.Hits-before.Hits, s.Misses-before.Misses
	if h+m == 0 {
		return 0, nil
	}
	return float64(h) / float64(h+m), nil
}

// LRUHitRate replays ops on a plain LRU of capacity entries (the textbook
// baseline) and returns the read hit rate.
func LRUHitRate(ops []Op, capacity int) float64 {
	ll := list.New()
	idx := map[string]*list.Element{}
	hits, reads := 0, 0
	touch := func(k string) {
		if e, ok := idx[k]; ok {
			ll.MoveToFront(e)
			return
		}
		idx[k] = ll.PushFront(k)
		if ll.Len() > capacity {
			old := ll.Back()
			ll.Remove(old)
			delete(idx, old.Value.(string))
		}
	}
	for _, o := range ops {
		if !o.Write {
			reads++
			if _, ok := idx[o.Key]; ok {
				hits++
			}
		}
		touch(o.Key)
	}
	if reads == 0 {
		return 0
	}
	return float64(hits) / float64(reads)
}
