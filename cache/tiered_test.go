package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cosmic-horizons/horizons/cache"
)

var ctx = context.Background()

func mem(t *testing.T, name string) *cache.Memory {
	t.Helper()
	m, err := cache.NewMemory(&cache.MemoryConfig{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newTiered(t *testing.T, cfg *cache.Config, tiers ...cache.Tier) *cache.Tiered {
	t.Helper()
	c, err := cache.New(tiers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// flaky is a tier wrapper that fails every call while down is set, and can
// lie about the key it returns.
type flaky struct {
	cache.Tier
	down  atomic.Bool
	liar  atomic.Bool
	calls atomic.Int64
}

var errDown = errors.New("dial tcp 127.0.0.1:1: connection refused")

func (f *flaky) Get(ctx context.Context, key string) (cache.Entry, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return cache.Entry{}, errDown
	}
	if f.liar.Load() {
		// Simulate a hash collision: hand back the entry of another key.
		return cache.Entry{Key: key + "-other", Value: []byte(`"other"`)}, nil
	}
	return f.Tier.Get(ctx, key)
}

func (f *flaky) Set(ctx context.Context, e cache.Entry) error {
	f.calls.Add(1)
	if f.down.Load() {
		return errDown
	}
	return f.Tier.Set(ctx, e)
}

func (f *flaky) Delete(ctx context.Context, key string) error {
	f.calls.Add(1)
	if f.down.Load() {
		return errDown
	}
	return f.Tier.Delete(ctx, key)
}

func (f *flaky) DeleteTag(ctx context.Context, tag string) error {
	f.calls.Add(1)
	if f.down.Load() {
		return errDown
	}
	return f.Tier.DeleteTag(ctx, tag)
}

type point struct {
	RA, Dec float64
}

func TestSetGetDeleteAndTags(t *testing.T) {
	c := newTiered(t, nil, mem(t, "memory"))
	if err := c.Set(ctx, "pos/mars", point{1, 2}, 0, "body:mars"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "pos/venus", point{3, 4}, time.Minute, "body:venus"); err != nil {
		t.Fatal(err)
	}
	var p point
	if err := c.Get(ctx, "pos/mars", &p); err != nil || p != (point{1, 2}) {
		t.Fatalf("Get = %v, %v", p, err)
	}
	if err := c.DeleteTag(ctx, "body:mars"); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "pos/mars", &p); !errors.Is(err, cache.ErrNotFound) || !strings.Contains(err.Error(), "pos/mars") {
		t.Fatalf("Get after DeleteTag = %v, want ErrNotFound naming the key", err)
	}
	if err := c.Delete(ctx, "pos/venus"); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "pos/venus", &p); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	s := c.Stats()
	if s.Hits != 1 || s.Misses != 2 {
		t.Fatalf("stats hits %d misses %d, want 1 and 2", s.Hits, s.Misses)
	}
}

func TestReadThroughAndPromotion(t *testing.T) {
	l1, l2 := mem(t, "l1"), mem(t, "l2")
	c := newTiered(t, nil, l1, l2)
	// Only the second tier holds the entry.
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := l2.Set(ctx, cache.Entry{Key: "k", Value: []byte(`"deep"`), Expires: exp, Tags: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := c.Get(ctx, "k", &s); err != nil || s != "deep" {
		t.Fatalf("Get = %q, %v", s, err)
	}
	e, err := l1.Get(ctx, "k")
	if err != nil {
		t.Fatalf("not promoted to the first tier: %v", err)
	}
	if !e.Expires.Equal(exp) || !e.HasTag("t") {
		t.Fatalf("promoted entry lost its expiry or tags: %+v", e)
	}
	st := c.Stats()
	if st.Tiers[0].Misses != 1 || st.Tiers[1].Hits != 1 || st.Tiers[0].Sets != 1 {
		t.Fatalf("tier stats %+v", st.Tiers)
	}
	// Tag deletion reaches both tiers.
	if err := c.DeleteTag(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	for _, tier := range []cache.Tier{l1, l2} {
		if _, err := tier.Get(ctx, "k"); !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("%s still holds k after DeleteTag: %v", tier.Name(), err)
		}
	}
}

func TestStampedeLoadsOnce(t *testing.T) {
	c := newTiered(t, nil, mem(t, "memory"))
	const callers = 1000
	var loads, arrived atomic.Int64
	gate := make(chan struct{})
	load := func(ctx context.Context, key string) (any, error) {
		loads.Add(1)
		<-gate
		return point{10, 20}, nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			arrived.Add(1)
			var p point
			if err := c.GetOrLoad(ctx, "hot", &p, load, nil); err != nil {
				errs <- err
			} else if p != (point{10, 20}) {
				errs <- fmt.Errorf("got %v", p)
			}
		})
	}
	for arrived.Load() < callers {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d concurrent misses caused %d loads, want exactly 1", callers, n)
	}
	if s := c.Stats(); s.Loads != 1 || s.Hits+s.Misses != callers {
		t.Fatalf("stats %+v", s)
	}
}

func TestNegativeCaching(t *testing.T) {
	c := newTiered(t, &cache.Config{NegativeTTL: time.Hour}, mem(t, "memory"))
	var loads atomic.Int64
	load := func(ctx context.Context, key string) (any, error) {
		loads.Add(1)
		return nil, fmt.Errorf("job %s: %w", key, cache.ErrNotFound)
	}
	var v string
	for range 3 {
		if err := c.GetOrLoad(ctx, "job/missing", &v, load, nil); !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("GetOrLoad = %v, want ErrNotFound", err)
		}
	}
	if loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1 (the absence is cached)", loads.Load())
	}
	if err := c.Get(ctx, "job/missing", &v); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get of a negative entry = %v", err)
	}
	if s := c.Stats(); s.NegativeHits != 3 {
		t.Fatalf("negative hits = %d, want 3", s.NegativeHits)
	}
	// Disabled negative caching calls the loader each time.
	c2 := newTiered(t, &cache.Config{NegativeTTL: -1}, mem(t, "memory"))
	loads.Store(0)
	for range 2 {
		_ = c2.GetOrLoad(ctx, "job/missing", &v, load, nil)
	}
	if loads.Load() != 2 {
		t.Fatalf("loads with negative caching off = %d, want 2", loads.Load())
	}
}

func TestLoaderErrorsAndPanics(t *testing.T) {
	c := newTiered(t, nil, mem(t, "memory"))
	var v int
	boom := errors.New("backend down")
	err := c.GetOrLoad(ctx, "k", &v, func(context.Context, string) (any, error) { return nil, boom }, nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `"k"`) {
		t.Fatalf("loader error = %v", err)
	}
	err = c.GetOrLoad(ctx, "p", &v, func(context.Context, string) (any, error) { panic("oops") }, nil)
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("loader panic = %v", err)
	}
	err = c.GetOrLoad(ctx, "n", &v, func(context.Context, string) (any, error) { return (*point)(nil), nil }, nil)
	if !errors.Is(err, cache.ErrNilValue) {
		t.Fatalf("loader nil value = %v, want ErrNilValue", err)
	}
	// Nothing was cached by the failures.
	ok := 0
	err = c.GetOrLoad(ctx, "k", &v, func(context.Context, string) (any, error) { ok++; return 7, nil }, nil)
	if err != nil || v != 7 || ok != 1 {
		t.Fatalf("retry after error = %d, %v (loads %d)", v, err, ok)
	}
	if s := c.Stats(); s.LoadErrors != 3 {
		t.Fatalf("load errors = %d, want 3", s.LoadErrors)
	}
	got, err := cache.Load(ctx, c, "typed", func(context.Context) (point, error) { return point{5, 6}, nil }, &cache.LoadOptions{TTL: time.Minute, Tags: []string{"x"}})
	if err != nil || got != (point{5, 6}) {
		t.Fatalf("Load = %v, %v", got, err)
	}
}

func TestBadInput(t *testing.T) {
	c := newTiered(t, &cache.Config{MaxValueSize: 64}, mem(t, "memory"))
	var v string
	cases := []struct {
		name string
		err  error
		want error
		msg  string
	}{
		{"empty key", c.Set(ctx, "", "v", 0), cache.ErrInvalidKey, "key is empty"},
		{"control char", c.Set(ctx, "a\nb", "v", 0), cache.ErrInvalidKey, `"a\nb"`},
		{"long key", c.Set(ctx, strings.Repeat("k", cache.MaxKeyLen+1), "v", 0), cache.ErrInvalidKey, "1025 bytes"},
		{"bad tag", c.Set(ctx, "k", "v", 0, ""), cache.ErrInvalidKey, "tag is empty"},
		{"nil value", c.Set(ctx, "k", nil, 0), cache.ErrNilValue, `"k"`},
		{"nil pointer", c.Set(ctx, "k", (*point)(nil), 0), cache.ErrNilValue, "*cache_test.point"},
		{"nil map", c.Set(ctx, "k", map[string]int(nil), 0), cache.ErrNilValue, "map"},
		{"oversize", c.Set(ctx, "big", strings.Repeat("x", 100), 0), cache.ErrTooLarge, "102 bytes, the limit is 64"},
		{"negative ttl", c.Set(ctx, "k", "v", -time.Second), cache.ErrInvalidArgument, "-1s"},
		{"nil dst", c.Get(ctx, "k", nil), cache.ErrInvalidArgument, "nil"},
		{"non-pointer dst", c.Get(ctx, "k", v), cache.ErrInvalidArgument, "string"},
		{"nil loader", c.GetOrLoad(ctx, "k", &v, nil, nil), cache.ErrInvalidArgument, "nil loader"},
		{"bad delete key", c.Delete(ctx, ""), cache.ErrInvalidKey, "empty"},
		{"bad delete tag", c.DeleteTag(ctx, "\x00"), cache.ErrInvalidKey, "tag"},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, tc.want) || !strings.Contains(tc.err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %v mentioning %q", tc.name, tc.err, tc.want, tc.msg)
		}
	}
	if err := c.Get(ctx, "big", &v); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("an oversize value was stored: %v", err)
	}
	if _, err := cache.New(nil, nil); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Errorf("New without tiers = %v", err)
	}
	if _, err := cache.New([]cache.Tier{mem(t, "a"), mem(t, "a")}, nil); !errors.Is(err, cache.ErrInvalidArgument) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("New with duplicate names = %v", err)
	}
	if _, err := cache.New([]cache.Tier{mem(t, "a")}, &cache.Config{WriteMode: 7}); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Errorf("New with a bad write mode = %v", err)
	}
}

func TestClosed(t *testing.T) {
	c, err := cache.New([]cache.Tier{mem(t, "memory")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var v string
	for name, err := range map[string]error{
		"Get":       c.Get(ctx, "k", &v),
		"Set":       c.Set(ctx, "k", "v", 0),
		"Delete":    c.Delete(ctx, "k"),
		"DeleteTag": c.DeleteTag(ctx, "t"),
		"GetOrLoad": c.GetOrLoad(ctx, "k", &v, func(context.Context, string) (any, error) { return "v", nil }, nil),
	} {
		if !errors.Is(err, cache.ErrClosed) || !strings.Contains(err.Error(), `"`) {
			t.Errorf("%s after Close = %v, want ErrClosed naming the key", name, err)
		}
	}
}

func TestNeverAnotherKeysValue(t *testing.T) {
	lying := &flaky{Tier: mem(t, "collide")}
	lying.liar.Store(true)
	c := newTiered(t, nil, lying)
	var v string
	if err := c.Get(ctx, "k", &v); !errors.Is(err, cache.ErrNotFound) || v != "" {
		t.Fatalf("Get through a tier returning another key's entry = %q, %v; want ErrNotFound", v, err)
	}
	st := c.Stats().Tiers[0]
	if st.Errors != 1 || !strings.Contains(st.LastError, "k-other") {
		t.Fatalf("the mismatch is not reported: %+v", st)
	}
}

func TestDegradesAndRecovers(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	l1 := mem(t, "memory")
	remote := &flaky{Tier: mem(t, "remote")}
	c := newTiered(t, &cache.Config{RetryAfter: 5 * time.Second, Now: clock}, l1, remote)

	remote.down.Store(true)
	if err := c.Set(ctx, "k", "v", time.Hour); err != nil {
		t.Fatalf("Set with one tier down = %v, want success from the other tier", err)
	}
	var v string
	if err := c.Get(ctx, "k", &v); err != nil || v != "v" {
		t.Fatalf("Get with the remote tier down = %q, %v", v, err)
	}
	st := c.Stats().Tiers[1]
	if st.Healthy || st.Errors != 1 || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("remote tier stats while down: %+v", st)
	}
	// While down the tier is left alone: misses do not hammer it.
	calls := remote.calls.Load()
	for i := range 10 {
		_ = c.Get(ctx, fmt.Sprint("miss", i), &v)
	}
	if remote.calls.Load() != calls {
		t.Fatalf("a failed tier was called %d times within RetryAfter", remote.calls.Load()-calls)
	}
	if c.Stats().Tiers[1].Skipped < 10 {
		t.Fatalf("skips not counted: %+v", c.Stats().Tiers[1])
	}
	// Invalidation reports the unreachable tier but drops the local copy.
	if err := c.Delete(ctx, "k"); !errors.Is(err, cache.ErrUnavailable) || !strings.Contains(err.Error(), "remote") {
		t.Fatalf("Delete with a tier down = %v, want ErrUnavailable naming the tier", err)
	}
	if err := c.Get(ctx, "k", &v); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	// Every tier down: Set reports it.
	l1c := &flaky{Tier: mem(t, "memory")}
	l1c.down.Store(true)
	cAll := newTiered(t, nil, l1c)
	if err := cAll.Set(ctx, "k", "v", 0); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("Set with every tier down = %v", err)
	}
	// Recovery: after RetryAfter the tier is probed and used again.
	remote.down.Store(false)
	advance(6 * time.Second)
	if err := c.Set(ctx, "k2", "v2", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Tier.Get(ctx, "k2"); err != nil {
		t.Fatalf("the recovered tier did not get the write: %v", err)
	}
	if st := c.Stats().Tiers[1]; !st.Healthy {
		t.Fatalf("tier not healthy after recovery: %+v", st)
	}
}

func TestWriteBehind(t *testing.T) {
	l1, l2 := mem(t, "l1"), mem(t, "l2")
	c, err := cache.New([]cache.Tier{l1, l2}, &cache.Config{WriteMode: cache.WriteBehind, QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := c.Set(ctx, fmt.Sprint("k", i), i, time.Hour, "batch"); err != nil {
			t.Fatal(err)
		}
	}
	// Delete waits for the queue: no older write can overtake it.
	if err := c.Delete(ctx, "k49"); err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Get(ctx, "k48"); err != nil {
		t.Fatalf("queued write did not reach the second tier before Delete returned: %v", err)
	}
	if _, err := l2.Get(ctx, "k49"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("deleted key still in the second tier: %v", err)
	}
	if err := c.Set(ctx, "last", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	// Close drains the queue: the write is not lost.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// l2 is closed with the cache; check the drained count instead.
	if s := c.Stats().Tiers[1]; s.Sets != 51 {
		t.Fatalf("second tier got %d writes, want 51", s.Sets)
	}
}

func TestEvictionsCounted(t *testing.T) {
	m, err := cache.NewMemory(&cache.MemoryConfig{MaxBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	c := newTiered(t, nil, m)
	for i := range 2000 {
		if err := c.Set(ctx, fmt.Sprint("k", i), strings.Repeat("x", 200), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Eviction runs in otter's maintenance, which reads and writes drive.
	deadline := time.Now().Add(5 * time.Second)
	var v string
	for (c.Stats().Tiers[0].Evictions == 0 || m.Len() > 16<<10/200) && time.Now().Before(deadline) {
		_ = c.Get(ctx, "k1999", &v)
		time.Sleep(time.Millisecond)
	}
	if ev := c.Stats().Tiers[0].Evictions; ev == 0 {
		t.Fatal("a 16 KiB tier holding 2000 × 200 B values evicted nothing")
	}
	if n := m.Len(); n > 16<<10/200 {
		t.Fatalf("tier holds %d entries, more than fit in 16 KiB", n)
	}
}

func TestCollector(t *testing.T) {
	c := newTiered(t, nil, mem(t, "memory"))
	_ = c.Set(ctx, "k", 1, 0)
	var v int
	_ = c.Get(ctx, "k", &v)
	_ = c.Get(ctx, "absent", &v)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(cache.NewCollector(c, "test")); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP horizons_cache_hits_total Lookups answered from a tier.
# TYPE horizons_cache_hits_total counter
horizons_cache_hits_total{cache="test"} 1
# HELP horizons_cache_misses_total Lookups no tier answered.
# TYPE horizons_cache_misses_total counter
horizons_cache_misses_total{cache="test"} 1
# HELP horizons_cache_tier_up 1 when the tier is in use, 0 while it is left alone after a failure.
# TYPE horizons_cache_tier_up gauge
horizons_cache_tier_up{cache="test",tier="memory"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "horizons_cache_hits_total", "horizons_cache_misses_total", "horizons_cache_tier_up"); err != nil {
		t.Fatal(err)
	}
}

func TestWarmer(t *testing.T) {
	c := newTiered(t, nil, mem(t, "memory"))
	var loads atomic.Int64
	w, err := cache.NewWarmer(c, cache.WarmerConfig{
		Keys: func(context.Context) ([]string, error) { return []string{"a", "b", "bad"}, nil },
		Load: func(_ context.Context, k string) (any, error) {
			loads.Add(1)
			if k == "bad" {
				return nil, errors.New("no data")
			}
			return "value " + k, nil
		},
		Tags:        func(k string) []string { return []string{"warm"} },
		OnlyMissing: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := w.WarmOnce(ctx)
	if r.Keys != 3 || r.Loaded != 2 || r.Failed != 1 || r.Err == nil || !strings.Contains(r.Err.Error(), `"bad"`) {
		t.Fatalf("first round %+v", r)
	}
	var v string
	if err := c.Get(ctx, "b", &v); err != nil || v != "value b" {
		t.Fatalf("warmed value = %q, %v", v, err)
	}
	r = w.WarmOnce(ctx)
	if r.Skipped != 2 || loads.Load() != 4 {
		t.Fatalf("second round %+v, loads %d: cached keys must be skipped", r, loads.Load())
	}
	// Run warms at once and stops with its context.
	_ = c.DeleteTag(ctx, "warm")
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(rctx) }()
	for c.Get(ctx, "a", &v) != nil {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if _, err := cache.NewWarmer(c, cache.WarmerConfig{}); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Fatalf("NewWarmer without Keys = %v", err)
	}
}

func TestEntryEncoding(t *testing.T) {
	e := cache.Entry{Key: "k ✓", Value: []byte{0, 1, 2}, Expires: time.Unix(1, 5).UTC(), Tags: []string{"a", "b"}, Negative: true}
	got, err := cache.UnmarshalEntry(cache.MarshalEntry(e))
	if err != nil || got.Key != e.Key || string(got.Value) != string(e.Value) || !got.Expires.Equal(e.Expires) || len(got.Tags) != 2 || !got.Negative {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	b := cache.MarshalEntry(e)
	for _, bad := range [][]byte{nil, []byte("plain value"), b[:14], b[:16]} {
		if _, err := cache.UnmarshalEntry(bad); !errors.Is(err, cache.ErrCorrupt) {
			t.Errorf("UnmarshalEntry(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}

// A caller that gives up does not fail the load for the others, and the
// value is cached for later callers.
func TestGetOrLoadCallerCancels(t *testing.T) {
	c := newTiered(t, nil, mem(t, "memory"))
	gate := make(chan struct{})
	started := make(chan struct{})
	load := func(ctx context.Context, key string) (any, error) {
		close(started)
		<-gate
		return "loaded", ctx.Err()
	}
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		var s string
		errc <- c.GetOrLoad(cctx, "k", &s, load, nil)
	}()
	<-started
	other := make(chan string, 1)
	go func() {
		var s string
		_ = c.GetOrLoad(ctx, "k", &s, load, nil)
		other <- s
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `"k"`) {
		t.Fatalf("cancelled caller = %v, want context.Canceled naming the key", err)
	}
	close(gate)
	if s := <-other; s != "loaded" {
		t.Fatalf("the other caller got %q", s)
	}
	var s string
	if err := c.Get(ctx, "k", &s); err != nil || s != "loaded" {
		t.Fatalf("value not cached after the load: %q, %v", s, err)
	}
}
