package cache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/cache"
)

// A two-tier cache: a small in-process tier in front of a larger one (in
// production the second tier is Redis or a disk directory).
func ExampleNew() {
	ctx := context.Background()
	l1, _ := cache.NewMemory(&cache.MemoryConfig{Name: "l1", MaxBytes: 1 << 20})
	l2, _ := cache.NewMemory(&cache.MemoryConfig{Name: "l2"})
	c, err := cache.New([]cache.Tier{l1, l2}, &cache.Config{DefaultTTL: 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	type position struct{ RA, Dec float64 }
	_ = c.Set(ctx, "ephemeris/mars/2026-11-27", position{RA: 233.1, Dec: -18.6}, 0, "body:mars")
	var p position
	err = c.Get(ctx, "ephemeris/mars/2026-11-27", &p)
	fmt.Println(p, err)

	_ = c.DeleteTag(ctx, "body:mars")
	err = c.Get(ctx, "ephemeris/mars/2026-11-27", &p)
	fmt.Println(errors.Is(err, cache.ErrNotFound))
	// Output:
	// {233.1 -18.6} <nil>
	// true
}

// GetOrLoad calls the loader once per missing key and caches the result;
// a loader's ErrNotFound is cached too, for Config.NegativeTTL.
func ExampleTiered_GetOrLoad() {
	ctx := context.Background()
	c, _ := cache.NewMemoryCache(nil, nil)
	defer c.Close()
	loads := 0
	status := func(ctx context.Context, key string) (any, error) {
		loads++
		if key == "job/unknown" {
			return nil, cache.ErrNotFound
		}
		return "RUNNING", nil
	}
	var s string
	for range 3 {
		_ = c.GetOrLoad(ctx, "job/7", &s, status, &cache.LoadOptions{TTL: time.Minute, Tags: []string{cache.JobTag("7")}})
	}
	err := c.GetOrLoad(ctx, "job/unknown", &s, status, nil)
	err2 := c.GetOrLoad(ctx, "job/unknown", &s, status, nil)
	fmt.Println(s, loads, errors.Is(err, cache.ErrNotFound), errors.Is(err2, cache.ErrNotFound))
	st := c.Stats()
	fmt.Printf("hits=%d misses=%d loads=%d\n", st.Hits, st.Misses, st.Loads)
	// Output:
	// RUNNING 2 true true
	// hits=2 misses=2 loads=2
}

// Load is the typed form of GetOrLoad.
func ExampleLoad() {
	ctx := context.Background()
	c, _ := cache.NewMemoryCache(nil, nil)
	defer c.Close()
	n, err := cache.Load(ctx, c, "answer", func(context.Context) (int, error) { return 42, nil }, nil)
	fmt.Println(n, err)
	// Output: 42 <nil>
}

// A warmer reloads a set of keys on a schedule; WarmOnce runs one round.
func ExampleWarmer() {
	ctx := context.Background()
	c, _ := cache.NewMemoryCache(nil, nil)
	defer c.Close()
	w, _ := cache.NewWarmer(c, cache.WarmerConfig{
		Keys: func(context.Context) ([]string, error) { return []string{"day/1", "day/2"}, nil },
		Load: func(_ context.Context, key string) (any, error) { return "data for " + key, nil },
	})
	r := w.WarmOnce(ctx) // Run(ctx) repeats it every Period
	var s string
	_ = c.Get(ctx, "day/2", &s)
	fmt.Println(r.Loaded, s)
	// Output: 2 data for day/2
}

// The in-process tier alone, as a cache.Tier.
func ExampleNewMemory() {
	ctx := context.Background()
	m, _ := cache.NewMemory(&cache.MemoryConfig{MaxBytes: 8 << 20})
	defer m.Close()
	_ = m.Set(ctx, cache.Entry{Key: "k", Value: []byte("v"), Tags: []string{"t"}})
	e, err := m.Get(ctx, "k")
	fmt.Println(string(e.Value), err)
	// Output: v <nil>
}
