package blobcache_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/blobcache"
)

// A disk tier behind the in-process one: entries survive a restart.
func ExampleOpenDir() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "blobcache-example-")
	defer os.RemoveAll(dir)

	disk, err := blobcache.OpenDir(dir, nil)
	if err != nil {
		panic(err)
	}
	mem, _ := cache.NewMemory(nil)
	c, _ := cache.New([]cache.Tier{mem, disk}, nil)
	_ = c.Set(ctx, "calibration/J0137+3309", map[string]float64{"flux_jy": 15.7}, 24*time.Hour)
	_ = c.Close()

	// A new process: the memory tier is empty, the disk answers.
	disk2, _ := blobcache.OpenDir(dir, nil)
	mem2, _ := cache.NewMemory(nil)
	c2, _ := cache.New([]cache.Tier{mem2, disk2}, nil)
	defer c2.Close()
	var v map[string]float64
	err = c2.Get(ctx, "calibration/J0137+3309", &v)
	fmt.Println(v["flux_jy"], err, c2.Stats().Tiers[1].Hits)
	// Output: 15.7 <nil> 1
}
