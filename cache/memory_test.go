package cache_test

import (
	"testing"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/cachetest"
)

func TestMemoryConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cache.Tier {
		m, err := cache.NewMemory(nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}, nil)
}
