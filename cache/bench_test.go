package cache_test

import (
	"context"
	"testing"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/cachetest"
)

// go test -run '^$' -bench . -benchtime 200000x ./cache
// (cmd/horizons-cachebench prints these side by side with ratios.)

func BenchmarkMemoryTierGet(b *testing.B) {
	m, _ := cache.NewMemory(nil)
	defer m.Close()
	cachetest.BenchTierGet(b, m)
}

func BenchmarkOtterRawGet(b *testing.B) { cachetest.BenchOtterGet(b) }

func BenchmarkMemoryTierSet(b *testing.B) {
	m, _ := cache.NewMemory(nil)
	defer m.Close()
	cachetest.BenchTierSet(b, m)
}

func BenchmarkOtterRawSet(b *testing.B) { cachetest.BenchOtterSet(b) }

func BenchmarkTieredGetJSON(b *testing.B) { cachetest.BenchTieredGet(b) }

// TestZipfHitRate replays a mixed workload (30 % one-hit scans, the rest
// Zipf with 10 % writes) on a 1 MiB
// in-process tier and checks its read hit rate against a plain LRU of the
// same entry capacity: the admission policy must not do worse.
func TestZipfHitRate(t *testing.T) {
	ops := cachetest.ZipfWorkload(1, 30_000, 15_000, 1.05, 0.1, 0.3)
	m, _ := cache.NewMemory(&cache.MemoryConfig{MaxBytes: 1 << 20})
	c, _ := cache.New([]cache.Tier{m}, nil)
	defer c.Close()
	hr, err := cachetest.ReplayHitRate(context.Background(), c, ops, 512)
	if err != nil {
		t.Fatal(err)
	}
	lru := cachetest.LRUHitRate(ops, (1<<20)/(512+96+16))
	t.Logf("read hit rate: in-process tier %.1f %%, LRU %.1f %%", 100*hr, 100*lru)
	if hr < 0.3 || hr < lru-0.02 {
		t.Fatalf("hit rate %.3f, LRU %.3f: want at least 0.3 and not below LRU", hr, lru)
	}
}
