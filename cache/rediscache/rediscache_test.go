package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/cachetest"
	"github.com/cosmic-horizons/horizons/cache/rediscache"
)

var ctx = context.Background()

func init() {
	// go-redis logs every failed dial; the refused-connection tests cause
	// them on purpose.
	redis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// redisURL returns the Redis of HORIZONS_REDIS_URL (default the local one on
// 6379), or skips the test when it does not answer — except under
// HORIZONS_REQUIRE_SERVICES=1, where that is a failure.
func redisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("HORIZONS_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("HORIZONS_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		if os.Getenv("HORIZONS_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Redis at %s unreachable and HORIZONS_REQUIRE_SERVICES=1: %v", rediscache.Redact(u), err)
		}
		t.Skipf("Redis at %s unreachable (set HORIZONS_REDIS_URL): %v", rediscache.Redact(u), err)
	}
	return u
}

var seq atomic.Int64

// prefix is unique per test and process, and its keys are dropped at the end.
func prefix(t testing.TB, u string) string {
	p := fmt.Sprintf("horizons-test:%d:%d:%d:", os.Getpid(), time.Now().UnixNano(), seq.Add(1))
	t.Cleanup(func() {
		opt, _ := redis.ParseURL(u)
		c := redis.NewClient(opt)
		defer c.Close()
		iter := c.Scan(ctx, 0, p+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return p
}

func open(t testing.TB, u string, cfg *rediscache.Config) *rediscache.Tier {
	t.Helper()
	tier, err := rediscache.Open(u, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tier
}

func TestConformance(t *testing.T) {
	u := redisURL(t)
	cachetest.Run(t, func(t *testing.T) cache.Tier {
		return open(t, u, &rediscache.Config{Prefix: prefix(t, u)})
	}, nil)
}

func TestKeyLayoutAndTagTTL(t *testing.T) {
	u := redisURL(t)
	p := prefix(t, u)
	tier := open(t, u, &rediscache.Config{Prefix: p})
	defer tier.Close()
	if err := tier.Set(ctx, cache.Entry{Key: "k", Value: []byte("v"), Expires: time.Now().Add(time.Minute), Tags: []string{"job:1"}}); err != nil {
		t.Fatal(err)
	}
	rdb := tier.Client()
	if ttl := rdb.PTTL(ctx, p+"k:k").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("entry TTL = %v, want (0, 1m]", ttl)
	}
	if m := rdb.SMembers(ctx, p+"t:job:1").Val(); len(m) != 1 || m[0] != "k" {
		t.Fatalf("tag set = %v", m)
	}
	if ttl := rdb.TTL(ctx, p+"t:job:1").Val(); ttl < time.Minute || ttl > 2*time.Minute {
		t.Fatalf("tag set TTL = %v, want about the entry's", ttl)
	}
	// A longer-lived entry extends the tag set's TTL; a shorter one does not
	// shorten it.
	_ = tier.Set(ctx, cache.Entry{Key: "k2", Value: []byte("v"), Expires: time.Now().Add(time.Hour), Tags: []string{"job:1"}})
	_ = tier.Set(ctx, cache.Entry{Key: "k3", Value: []byte("v"), Expires: time.Now().Add(time.Second), Tags: []string{"job:1"}})
	if ttl := rdb.TTL(ctx, p+"t:job:1").Val(); ttl < 59*time.Minute {
		t.Fatalf("tag set TTL = %v, want at least the longest entry's (1h)", ttl)
	}
	// Another key's bytes stored under this key are never returned.
	rdb.Set(ctx, p+"k:victim", cache.MarshalEntry(cache.Entry{Key: "intruder", Value: []byte("x")}), time.Minute)
	if _, err := tier.Get(ctx, "victim"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get of a key holding another key's entry = %v, want ErrNotFound", err)
	}
	rdb.Set(ctx, p+"k:garbage", "not an entry", time.Minute)
	if _, err := tier.Get(ctx, "garbage"); !errors.Is(err, cache.ErrCorrupt) {
		t.Fatalf("Get of garbage = %v, want ErrCorrupt", err)
	}
}

func TestRefusedConnection(t *testing.T) {
	// Port 1 refuses connections; no live Redis is needed.
	tier := open(t, "redis://user:s3cret-pw@127.0.0.1:1/0", &rediscache.Config{Timeout: 200 * time.Millisecond})
	_, err := tier.Get(ctx, "k")
	if !errors.Is(err, cache.ErrUnavailable) || !strings.Contains(err.Error(), `"k"`) {
		t.Fatalf("Get with Redis refusing = %v, want ErrUnavailable naming the key", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the password leaked into an error: %v", err)
	}
	if err := tier.Ping(ctx); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("Ping = %v", err)
	}
	m, _ := cache.NewMemory(nil)
	c, err := cache.New([]cache.Tier{m, tier}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", "v", time.Minute); err != nil {
		t.Fatalf("Set with Redis down = %v; the memory tier should take it", err)
	}
	var v string
	if err := c.Get(ctx, "k", &v); err != nil || v != "v" {
		t.Fatalf("Get with Redis down = %q, %v", v, err)
	}
	st := c.Stats().Tiers[1]
	if st.Healthy || st.Errors == 0 || !strings.Contains(st.LastError, "refused") || strings.Contains(st.LastError, "s3cret") {
		t.Fatalf("redis tier stats: %+v", st)
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:6379", "redis://u:s3cret-pw@127.0.0.1:notaport/0", "redis://127.0.0.1:6379/db"} {
		_, err := rediscache.Open(u, nil)
		if !errors.Is(err, cache.ErrInvalidArgument) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) = %v, want ErrInvalidArgument without the password", rediscache.Redact(u), err)
		}
	}
	if _, err := rediscache.New(nil, nil); !errors.Is(err, cache.ErrInvalidArgument) {
		t.Errorf("New(nil) = %v", err)
	}
}

// proxy forwards TCP to target until cut; while cut it drops every
// connection.
type proxy struct {
	ln     net.Listener
	target string
	cut    atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.cut.Load() {
				c.Close()
				continue
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

func (p *proxy) setCut(cut bool) {
	p.cut.Store(cut)
	if cut {
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
		p.mu.Unlock()
	}
}

func TestDegradeAndRecoverThroughProxy(t *testing.T) {
	u := redisURL(t)
	opt, _ := redis.ParseURL(u)
	px := newProxy(t, opt.Addr)
	p := prefix(t, u)
	viaProxy := strings.Replace(u, opt.Addr, px.ln.Addr().String(), 1)
	tier := open(t, viaProxy, &rediscache.Config{Prefix: p, Timeout: 300 * time.Millisecond})
	direct := open(t, u, &rediscache.Config{Prefix: p})
	defer direct.Close()

	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	m, _ := cache.NewMemory(nil)
	c, err := cache.New([]cache.Tier{m, tier}, &cache.Config{RetryAfter: time.Second, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "before", "v1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Get(ctx, "before"); err != nil {
		t.Fatalf("write-through did not reach Redis: %v", err)
	}
	// An entry only Redis holds.
	if err := direct.Set(ctx, cache.Entry{Key: "deep", Value: []byte(`"from redis"`), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	px.setCut(true)
	var v string
	if err := c.Get(ctx, "before", &v); err != nil || v != "v1" {
		t.Fatalf("Get with Redis cut = %q, %v; the memory tier should answer", v, err)
	}
	if err := c.Get(ctx, "deep", &v); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get of a Redis-only key with Redis cut = %v, want a plain miss", err)
	}
	if err := c.Set(ctx, "during", "v2", time.Hour); err != nil {
		t.Fatalf("Set with Redis cut = %v", err)
	}
	st := c.Stats().Tiers[1]
	if st.Healthy || st.Errors == 0 {
		t.Fatalf("redis tier while cut: %+v", st)
	}

	px.setCut(false)
	offset.Add(int64(2 * time.Second)) // past RetryAfter
	if err := c.Get(ctx, "deep", &v); err != nil || v != "from redis" {
		t.Fatalf("Get after Redis came back = %q, %v", v, err)
	}
	if st := c.Stats().Tiers[1]; !st.Healthy {
		t.Fatalf("redis tier not healthy after recovery: %+v", st)
	}
	if err := c.Set(ctx, "after", "v3", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Get(ctx, "after"); err != nil {
		t.Fatalf("writes do not reach Redis after recovery: %v", err)
	}
}
