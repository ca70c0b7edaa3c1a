package rediscache_test

import (
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/cachetest"
	"github.com/cosmic-horizons/horizons/cache/rediscache"
)

// BenchmarkRedisTierGet reports the hit latency of the Redis tier, p50 and
// p99 of the b.N Gets (go test -run '^$' -bench Redis -benchtime 2000x).
func BenchmarkRedisTierGet(b *testing.B) {
	u := redisURL(b)
	tier := open(b, u, &rediscache.Config{Prefix: prefix(b, u)})
	defer tier.Close()
	if err := tier.Set(ctx, cache.Entry{Key: "hot", Value: make([]byte, 256), Expires: time.Now().Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	d, err := cachetest.Latencies(b.N, func() error { _, err := tier.Get(ctx, "hot"); return err })
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cachetest.Percentile(d, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(cachetest.Percentile(d, 99).Microseconds()), "p99-µs")
}
