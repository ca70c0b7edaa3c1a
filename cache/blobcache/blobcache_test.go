package blobcache_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/blobcache"
	"github.com/cosmic-horizons/horizons/cache/cachetest"
)

var ctx = context.Background()

func TestDirConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cache.Tier {
		tier, err := blobcache.OpenDir(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return tier
	}, nil)
}

// Every key hashes to the same name: a read of an overwritten key is a
// miss, never the other key's value, also through a Tiered cache.
func TestCollisionIsAMiss(t *testing.T) {
	tier, err := blobcache.OpenDir(t.TempDir(), &blobcache.Config{Hash: func(string) string { return "abcd" }})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	_ = tier.Set(ctx, cache.Entry{Key: "a", Value: []byte("A"), Expires: exp})
	_ = tier.Set(ctx, cache.Entry{Key: "b", Value: []byte("B"), Expires: exp})
	if e, err := tier.Get(ctx, "a"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get(a) after b overwrote its object = %q, %v; want ErrNotFound", e.Value, err)
	}
	if e, err := tier.Get(ctx, "b"); err != nil || string(e.Value) != "B" {
		t.Fatalf("Get(b) = %q, %v", e.Value, err)
	}
	c, err := cache.New([]cache.Tier{tier}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Set(ctx, "x", "value of x", 0)
	_ = c.Set(ctx, "y", "value of y", 0)
	var v string
	if err := c.Get(ctx, "x", &v); !errors.Is(err, cache.ErrNotFound) || v != "" {
		t.Fatalf("Tiered Get(x) after y collided = %q, %v", v, err)
	}
}

func TestTornAndForeignFiles(t *testing.T) {
	dir := t.TempDir()
	tier, err := blobcache.OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = tier.Set(ctx, cache.Entry{Key: "k", Value: []byte("v"), Expires: time.Now().Add(time.Hour)})
	h := blobcache.Hash("k")
	p := filepath.Join(dir, "e", h[:2], h)
	if err := os.WriteFile(p, []byte("HZC"), 0o600); err != nil { // torn write
		t.Fatal(err)
	}
	if _, err := tier.Get(ctx, "k"); !errors.Is(err, cache.ErrNotFound) || !errors.Is(err, cache.ErrCorrupt) {
		t.Fatalf("Get of a torn file = %v, want ErrNotFound and ErrCorrupt", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the torn file was not removed: %v", err)
	}
	// No temporary files are left behind by writes.
	for i := range 20 {
		_ = tier.Set(ctx, cache.Entry{Key: "k", Value: []byte(strings.Repeat("x", i))})
	}
	tmp, _ := filepath.Glob(filepath.Join(dir, "e", h[:2], ".tmp-*"))
	if len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

func TestSweep(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	tier, err := blobcache.OpenDir(t.TempDir(), &blobcache.Config{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	_ = tier.Set(ctx, cache.Entry{Key: "short", Value: []byte("v"), Expires: now.Add(time.Minute)})
	_ = tier.Set(ctx, cache.Entry{Key: "long", Value: []byte("v"), Expires: now.Add(time.Hour)})
	now = now.Add(2 * time.Minute)
	n, err := tier.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 removed", n, err)
	}
	if _, err := tier.Get(ctx, "long"); err != nil {
		t.Fatalf("Sweep removed a live entry: %v", err)
	}
}

func TestBadDir(t *testing.T) {
	if _, err := blobcache.OpenDir(" ", nil); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Fatalf("OpenDir(blank) = %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	_ = os.WriteFile(f, nil, 0o600)
	if _, err := blobcache.OpenDir(filepath.Join(f, "sub"), nil); err == nil || !strings.Contains(err.Error(), "sub") {
		t.Fatalf("OpenDir under a file = %v, want an error naming the directory", err)
	}
	if _, err := blobcache.New(nil, nil); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Fatalf("New(nil) = %v", err)
	}
}
