package rediscache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/rediscache"
)

// An in-process tier in front of Redis. Open does not wait for Redis: while
// it is down the cache serves from memory and reports the failure in Stats.
// (No Output: it needs a Redis server.)
func ExampleOpen() {
	ctx := context.Background()
	redisTier, err := rediscache.Open("redis://127.0.0.1:6379/0", &rediscache.Config{Prefix: "example:"})
	if err != nil {
		panic(err)
	}
	mem, _ := cache.NewMemory(nil)
	c, _ := cache.New([]cache.Tier{mem, redisTier}, &cache.Config{DefaultTTL: 24 * time.Hour})
	defer c.Close() // closes both tiers

	_ = c.Set(ctx, "greeting", "hello", time.Minute, "demo")
	var s string
	err = c.Get(ctx, "greeting", &s)
	fmt.Println(s, err)
	for _, t := range c.Stats().Tiers {
		fmt.Println(t.Name, t.Healthy, t.LastError)
	}
}
