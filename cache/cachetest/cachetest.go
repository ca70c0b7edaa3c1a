// Package cachetest is the conformance suite every cache.Tier driver passes:
// Run it from the driver's tests with a constructor of fresh, empty tiers.
package cachetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/cache"
)

// Config tunes Run. A nil *Config means the defaults.
type Config struct {
	// ExpiryWait is how long the expiry test sleeps after a 100 ms TTL
	// before it expects the entry gone (default 400 ms).
	ExpiryWait time.Duration
}

// Run runs the conformance suite. newTier returns a fresh tier that no other
// test shares (use a unique key prefix or directory); Run closes it.
func Run(t *testing.T, newTier func(t *testing.T) cache.Tier, cfg *Config) {
	wait := 400 * time.Millisecond
	if cfg != nil && cfg.ExpiryWait > 0 {
		wait = cfg.ExpiryWait
	}
	fresh := func(t *testing.T) cache.Tier {
		tier := newTier(t)
		t.Cleanup(func() { _ = tier.Close() })
		return tier
	}
	ctx := context.Background()
	hour := func() time.Time { return time.Now().Add(time.Hour).Truncate(time.Millisecond) }

	t.Run("Name", func(t *testing.T) {
		if fresh(t).Name() == "" {
			t.Fatal("Name() is empty")
		}
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		_, err := fresh(t).Get(ctx, "absent")
		if !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		tier := fresh(t)
		want := cache.Entry{Key: "job:42/result", Value: []byte(`{"ok":true}`), Expires: hour(), Tags: []string{"job:42", "kind:result"}}
		mustSet(t, tier, want)
		got := mustGet(t, tier, want.Key)
		sameEntry(t, got, want)
		// The tier must not share its buffers with callers.
		got.Value[0] = 'X'
		sameEntry(t, mustGet(t, tier, want.Key), want)
	})
	t.Run("BinaryAndEmptyValues", func(t *testing.T) {
		tier := fresh(t)
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		for _, e := range []cache.Entry{
			{Key: "bin", Value: all, Expires: hour()},
			{Key: "empty", Value: []byte{}, Expires: hour()},
			{Key: "neg", Value: []byte{}, Expires: hour(), Negative: true},
			{Key: "unicode ключ ✓", Value: []byte("v"), Expires: hour()},
		} {
			mustSet(t, tier, e)
			sameEntry(t, mustGet(t, tier, e.Key), e)
		}
	})
	t.Run("Overwrite", func(t *testing.T) {
		tier := fresh(t)
		mustSet(t, tier, cache.Entry{Key: "k", Value: []byte("one"), Expires: hour()})
		want := cache.Entry{Key: "k", Value: []byte("two"), Expires: hour().Add(time.Minute)}
		mustSet(t, tier, want)
		sameEntry(t, mustGet(t, tier, "k"), want)
	})
	t.Run("NeverAnotherKeysValue", func(t *testing.T) {
		tier := fresh(t)
		keys := []string{"a", "a:", "a:b", "ab", "a:b:", "b", "k:a", "t:a", "A", "a ", "a/b", "a/../b"}
		for _, k := range keys {
			mustSet(t, tier, cache.Entry{Key: k, Value: []byte("value of " + k), Expires: hour()})
		}
		for _, k := range keys {
			if got := mustGet(t, tier, k); got.Key != k || string(got.Value) != "value of "+k {
				t.Errorf("Get(%q) = key %q value %q", k, got.Key, got.Value)
			}
		}
		if _, err := tier.Get(ctx, "a:b:c"); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("Get(a:b:c) = %v, want ErrNotFound", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		tier := fresh(t)
		mustSet(t, tier, cache.Entry{Key: "k", Value: []byte("v"), Expires: hour()})
		mustSet(t, tier, cache.Entry{Key: "k2", Value: []byte("v2"), Expires: hour()})
		if err := tier.Delete(ctx, "k"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := tier.Get(ctx, "k"); !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
		}
		mustGet(t, tier, "k2")
		if err := tier.Delete(ctx, "never-set"); err != nil {
			t.Fatalf("Delete of an absent key: %v", err)
		}
	})
	t.Run("DeleteTag", func(t *testing.T) {
		tier := fresh(t)
		mustSet(t, tier, cache.Entry{Key: "j1/a", Value: []byte("1"), Expires: hour(), Tags: []string{"job:1"}})
		mustSet(t, tier, cache.Entry{Key: "j1/b", Value: []byte("2"), Expires: hour(), Tags: []string{"job:1", "other"}})
		mustSet(t, tier, cache.Entry{Key: "j2/a", Value: []byte("3"), Expires: hour(), Tags: []string{"job:2"}})
		mustSet(t, tier, cache.Entry{Key: "plain", Value: []byte("4"), Expires: hour()})
		// Re-set without the tag: it must survive DeleteTag.
		mustSet(t, tier, cache.Entry{Key: "retagged", Value: []byte("5"), Expires: hour(), Tags: []string{"job:1"}})
		mustSet(t, tier, cache.Entry{Key: "retagged", Value: []byte("6"), Expires: hour(), Tags: []string{"job:3"}})
		if err := tier.DeleteTag(ctx, "job:1"); err != nil {
			t.Fatalf("DeleteTag: %v", err)
		}
		for _, k := range []string{"j1/a", "j1/b"} {
			if _, err := tier.Get(ctx, k); !errors.Is(err, cache.ErrNotFound) {
				t.Errorf("Get(%s) after DeleteTag(job:1) = %v, want ErrNotFound", k, err)
			}
		}
		for _, k := range []string{"j2/a", "plain", "retagged"} {
			mustGet(t, tier, k)
		}
		if err := tier.DeleteTag(ctx, "no-such-tag"); err != nil {
			t.Fatalf("DeleteTag of an unknown tag: %v", err)
		}
		// A key set again after its tag was dropped is tagged anew.
		mustSet(t, tier, cache.Entry{Key: "j1/a", Value: []byte("7"), Expires: hour(), Tags: []string{"job:1"}})
		if err := tier.DeleteTag(ctx, "job:1"); err != nil {
			t.Fatal(err)
		}
		if _, err := tier.Get(ctx, "j1/a"); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("Get(j1/a) after the second DeleteTag = %v, want ErrNotFound", err)
		}
	})
	t.Run("Expiry", func(t *testing.T) {
		tier := fresh(t)
		// Already expired: never returned.
		mustSet(t, tier, cache.Entry{Key: "past", Value: []byte("v"), Expires: time.Now().Add(-time.Second)})
		if _, err := tier.Get(ctx, "past"); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("Get of an entry set already expired = %v, want ErrNotFound", err)
		}
		mustSet(t, tier, cache.Entry{Key: "short", Value: []byte("v"), Expires: time.Now().Add(100 * time.Millisecond)})
		mustSet(t, tier, cache.Entry{Key: "forever", Value: []byte("v")})
		time.Sleep(wait)
		if _, err := tier.Get(ctx, "short"); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("Get %v after a 100ms TTL = %v, want ErrNotFound", wait, err)
		}
		if got := mustGet(t, tier, "forever"); !got.Expires.IsZero() {
			t.Errorf("entry without expiry came back with Expires %v", got.Expires)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		tier := fresh(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 8 {
			wg.Go(func() {
				for i := range 25 {
					k := fmt.Sprintf("g%d/k%d", g, i)
					v := []byte(k + "=" + fmt.Sprint(i))
					if err := tier.Set(ctx, cache.Entry{Key: k, Value: v, Expires: hour(), Tags: []string{fmt.Sprintf("g%d", g)}}); err != nil {
						errs <- err
						return
					}
					e, err := tier.Get(ctx, k)
					if err != nil || e.Key != k || !bytes.Equal(e.Value, v) {
						errs <- fmt.Errorf("Get(%q) = %q, %q, %v", k, e.Key, e.Value, err)
						return
					}
				}
				if err := tier.DeleteTag(ctx, fmt.Sprintf("g%d", g)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if _, err := tier.Get(ctx, "g3/k7"); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("Get(g3/k7) after DeleteTag(g3) = %v, want ErrNotFound", err)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		tier := newTier(t)
		mustSet(t, tier, cache.Entry{Key: "k", Value: []byte("v"), Expires: hour()})
		if err := tier.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := tier.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := tier.Get(ctx, "k"); !errors.Is(err, cache.ErrClosed) {
			t.Errorf("Get after Close = %v, want ErrClosed", err)
		}
		if err := tier.Set(ctx, cache.Entry{Key: "k", Value: []byte("v")}); !errors.Is(err, cache.ErrClosed) {
			t.Errorf("Set after Close = %v, want ErrClosed", err)
		}
		if err := tier.Delete(ctx, "k"); !errors.Is(err, cache.ErrClosed) {
			t.Errorf("Delete after Close = %v, want ErrClosed", err)
		}
		if err := tier.DeleteTag(ctx, "t"); !errors.Is(err, cache.ErrClosed) {
			t.Errorf("DeleteTag after Close = %v, want ErrClosed", err)
		}
	})
}

func mustSet(t *testing.T, tier cache.Tier, e cache.Entry) {
	t.Helper()
	if err := tier.Set(context.Background(), e); err != nil {
		t.Fatalf("Set(%q): %v", e.Key, err)
	}
}

func mustGet(t *testing.T, tier cache.Tier, key string) cache.Entry {
	t.Helper()
	e, err := tier.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return e
}

func sameEntry(t *testing.T, got, want cache.Entry) {
	t.Helper()
	if got.Key != want.Key || !bytes.Equal(got.Value, want.Value) || !got.Expires.Equal(want.Expires) ||
		got.Negative != want.Negative || !slices.Equal(sortedCopy(got.Tags), sortedCopy(want.Tags)) {
		t.Fatalf("got entry %+v, want %+v", got, want)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if len(s) == 0 {
		return nil
	}
	return s
}
