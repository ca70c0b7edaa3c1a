// Command horizons-cachebench measures the cache package and prints the
// figures side by side in one run:
//
//   - in-process tier Get and Set, ns/op, next to the raw otter cache
//     underneath configured the same way, and their ratio (median of -runs
//     runs of testing.Benchmark);
//
//   - a whole Tiered Get (key checks, tier read, JSON decoding);
//
//   - Redis tier hit latency p50/p99 next to a raw go-redis GET of the same
//     bytes (skipped when -redis does not answer);
//
//   - a stampede: -callers concurrent GetOrLoad misses of one key and the
//     number of loads they caused (the package's tests assert exactly one);
//
//   - the read hit rate of a 4 MiB in-process tier on a replayed mixed
//     workload (30 % one-hit scans, Zipf s=1.05 over 50 000 keys with 10 %
//     writes) next to a plain LRU of the same entry capacity.
//
//     go run ./cmd/horizons-cachebench
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/cachetest"
	"github.com/cosmic-horizons/horizons/cache/rediscache"
)

func main() {
	testing.Init()
	runs := flag.Int("runs", 3, "runs of each micro-benchmark (the median is printed)")
	redisURL := flag.String("redis", envOr("HORIZONS_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL for the Redis tier latency (env HORIZONS_REDIS_URL)")
	samples := flag.Int("samples", 5000, "Redis GETs timed for p50/p99")
	callers := flag.Int("callers", 1000, "concurrent callers in the stampede")
	flag.Parse()
	ctx := context.Background()

	fmt.Println("In-process tier vs raw otter (ns/op, median of", *runs, "runs)")
	fmt.Printf("  %-8s %12s %12s %8s\n", "op", "tier", "otter", "ratio")
	get := median(*runs, func(b *testing.B) {
		m, _ := cache.NewMemory(nil)
		defer m.Close()
		cachetest.BenchTierGet(b, m)
	})
	rawGet := median(*runs, cachetest.BenchOtterGet)
	set := median(*runs, func(b *testing.B) {
		m, _ := cache.NewMemory(nil)
		defer m.Close()
		cachetest.BenchTierSet(b, m)
	})
	rawSet := median(*runs, cachetest.BenchOtterSet)
	fmt.Printf("  %-8s %12.0f %12.0f %7.1fx\n", "get", get, rawGet, get/rawGet)
	fmt.Printf("  %-8s %12.0f %12.0f %7.1fx\n", "set", set, rawSet, set/rawSet)
	tg := median(*runs, cachetest.BenchTieredGet)
	fmt.Printf("  %-8s %12.0f %12.0f %7.1fx   (Tiered.Get with JSON decoding vs raw otter get)\n", "tiered", tg, rawGet, tg/rawGet)

	fmt.Println("\nRedis tier hit latency vs raw go-redis GET")
	if err := redisLatency(ctx, *redisURL, *samples); err != nil {
		fmt.Println("  skipped:", err)
	}

	fmt.Println("\nStampede")
	loads, err := stampede(ctx, *callers)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("  %d concurrent misses of one key -> %d load(s)\n", *callers, loads)

	fmt.Println("\nRead hit rate on a replayed mixed workload (200 000 requests)")
	ops := cachetest.ZipfWorkload(1, 200_000, 50_000, 1.05, 0.1, 0.3)
	m, _ := cache.NewMemory(&cache.MemoryConfig{MaxBytes: 4 << 20})
	c, _ := cache.New([]cache.Tier{m}, nil)
	hr, err := cachetest.ReplayHitRate(ctx, c, ops, 512)
	_ = c.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lru := cachetest.LRUHitRate(ops, (4<<20)/(512+96+16))
	fmt.Printf("  %-28s %6.1f %%\n  %-28s %6.1f %%\n", "in-process tier (4 MiB)", 100*hr, "plain LRU (same entries)", 100*lru)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func median(runs int, f func(*testing.B)) float64 {
	var ns []float64
	for range max(runs, 1) {
		r := testing.Benchmark(f)
		ns = append(ns, float64(r.NsPerOp()))
	}
	slices.Sort(ns)
	return ns[len(ns)/2]
}

func redisLatency(ctx context.Context, url string, n int) error {
	prefix := fmt.Sprintf("horizons-cachebench:%d:", os.Getpid())
	tier, err := rediscache.Open(url, &rediscache.Config{Prefix: prefix})
	if err != nil {
		return err
	}
	defer tier.Close()
	if err := tier.Ping(ctx); err != nil {
		return err
	}
	rdb := tier.Client()
	defer rdb.Del(ctx, prefix+"k:hot", prefix+"raw")
	val := make([]byte, 256)
	if err := tier.Set(ctx, cache.Entry{Key: "hot", Value: val, Expires: time.Now().Add(time.Hour)}); err != nil {
		return err
	}
	if err := rdb.Set(ctx, prefix+"raw", val, time.Hour).Err(); err != nil {
		return err
	}
	td, err := cachetest.Latencies(n, func() error { _, err := tier.Get(ctx, "hot"); return err })
	if err != nil {
		return err
	}
	rd, err := cachetest.Latencies(n, func() error { return rdb.Get(ctx, prefix+"raw").Err() })
	if err != nil && err != redis.Nil {
		return err
	}
	fmt.Printf("  %-12s %10s %10s\n", "", "p50", "p99")
	fmt.Printf("  %-12s %10v %10v\n", "tier", cachetest.Percentile(td, 50).Round(time.Microsecond), cachetest.Percentile(td, 99).Round(time.Microsecond))
	fmt.Printf("  %-12s %10v %10v\n", "raw go-redis", cachetest.Percentile(rd, 50).Round(time.Microsecond), cachetest.Percentile(rd, 99).Round(time.Microsecond))
	fmt.Printf("  (%d sequential GETs of a 256-byte value at %s)\n", n, rediscache.Redact(url))
	return nil
}

func stampede(ctx context.Context, callers int) (int64, error) {
	c, err := cache.NewMemoryCache(nil, nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var loads, arrived atomic.Int64
	gate := make(chan struct{})
	load := func(context.Context, string) (any, error) {
		loads.Add(1)
		<-gate
		return "value", nil
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range callers {
		wg.Go(func() {
			arrived.Add(1)
			var s string
			if err := c.GetOrLoad(ctx, "hot", &s, load, nil); err != nil || s != "value" {
				failed.Add(1)
			}
		})
	}
	for arrived.Load() < int64(callers) {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	if failed.Load() > 0 {
		return 0, fmt.Errorf("%d callers failed", failed.Load())
	}
	return loads.Load(), nil
}
