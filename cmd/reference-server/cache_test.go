package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCacheConfig(t *testing.T) {
	env := map[string]string{envCacheRedis: "redis://127.0.0.1:6379/2", envCacheDir: "/tmp/c"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || cfg.CacheRedis != "redis://127.0.0.1:6379/2" || cfg.CacheDir != "/tmp/c" {
		t.Fatalf("from env: %+v, %v", cfg, err)
	}
	cfg, err = parseConfig([]string{"-cache-redis", "redis://h:6380/0", "-cache-dir", "/var/c"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || cfg.CacheRedis != "redis://h:6380/0" || cfg.CacheDir != "/var/c" {
		t.Fatalf("flags over env: %+v, %v", cfg, err)
	}
	if cfg, err = parseConfig(nil, nil, io.Discard); err != nil || cfg.CacheRedis != "" || cfg.CacheDir != "" {
		t.Fatalf("default must be in-process only: %+v, %v", cfg, err)
	}
	_, err = parseConfig([]string{"-cache-redis", "http://h:1"}, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-cache-redis") {
		t.Fatalf("bad -cache-redis = %v, want an error naming the flag", err)
	}
	_, err = parseConfig(nil, func(k string) string {
		return map[string]string{envCacheRedis: "redis://u:s3cret-pw@h:notaport/0"}[k]
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), envCacheRedis) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad %s = %v, want an error naming it without the password", envCacheRedis, err)
	}
}

func TestCacheInServer(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{envAdminToken: testAdminToken, envCacheDir: filepath.Join(dir, "cache"),
		// Redis refusing connections: the server starts and serves from
		// the other tiers.
		envCacheRedis: "redis://user:s3cret-pw@127.0.0.1:1/0"}
	ts := startServer(t, filepath.Join(dir, "data"), env, testOptions(50*time.Millisecond))

	// Ephemeris answers: the second identical query is a cache hit.
	q := "/api/v1/ephemeris/position?body=jupiter&time=2026-12-01T06:00:00Z&site=vla"
	r1 := ts.do("GET", q, "", nil, nil)
	r2 := ts.do("GET", q, "", nil, nil)
	if r1.status != http.StatusOK || r1.header.Get("X-Cache") != "MISS" || r2.header.Get("X-Cache") != "HIT" || string(r1.body) != string(r2.body) {
		t.Fatalf("ephemeris: %d %s / %d %s\n%s\n%s", r1.status, r1.header.Get("X-Cache"), r2.status, r2.header.Get("X-Cache"), r1.body, r2.body)
	}

	// Job reads: a completed job is served from the cache, to its owner
	// only.
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "user")
	j, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "cache-test"}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	ts.waitJob(alice.Token, j.ID, func(j jobJSON) bool { return j.State == "COMPLETED" })
	// The job.completed event may still drop the first cached copy; after
	// that the completed job stays cached.
	deadline := time.Now().Add(waitLimit)
	for {
		r = ts.do("GET", "/api/v1/jobs/"+j.ID, alice.Token, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("completed job read: %d %s", r.status, r.body)
		}
		if r.header.Get("X-Cache") == "HIT" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a completed job is never served from the cache")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var got jobJSON
	r.decode(t, &got)
	if got.ID != j.ID || got.State != "COMPLETED" || got.Owner != alice.ID {
		t.Fatalf("cached job = %+v", got)
	}
	if r := ts.do("GET", "/api/v1/jobs/"+j.ID, bob.Token, nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("another user's cached job: %d %s", r.status, r.body)
	}

	// Admin stats: tiers, hits, the failing Redis tier, invalidations by
	// the job's events, and the warmers.
	if r := ts.do("GET", "/api/v1/admin/cache", alice.Token, nil, nil); r.status != http.StatusForbidden {
		t.Fatalf("non-admin cache stats: %d", r.status)
	}
	var st cacheStatsJSON
	deadline = time.Now().Add(waitLimit)
	for {
		r = ts.do("GET", "/api/v1/admin/cache", testAdminToken, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("cache stats: %d %s", r.status, r.body)
		}
		r.decode(t, &st)
		if st.Invalidated >= 3 && len(st.Warmers) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(string(r.body), "s3cret") {
		t.Fatalf("the Redis password leaked into the stats: %s", r.body)
	}
	if len(st.TierStats) != 3 || st.TierStats[0].Name != "memory" || st.TierStats[1].Name != "redis" || st.TierStats[2].Name != "disk" {
		t.Fatalf("tiers = %+v", st.TierStats)
	}
	if st.Hits < 2 || st.TierStats[1].Errors == 0 || !strings.Contains(st.TierStats[1].LastError, "refused") || st.TierStats[2].Sets == 0 {
		t.Fatalf("stats = %s", r.body)
	}
	if st.Invalidated < 3 || st.PartialInvalidations == 0 {
		t.Fatalf("job events invalidated %d times, want one per state change: %s", st.Invalidated, r.body)
	}
	ew := st.Warmers["ephemeris"]
	if ew.Keys != ephemWarmDays*len(warmBodies) || ew.Loaded+ew.Skipped != ew.Keys || ew.Failed != 0 {
		t.Fatalf("ephemeris warmer = %+v", ew)
	}
	// Metrics carry the same counters.
	m := ts.do("GET", "/metrics", "", nil, nil)
	if !strings.Contains(string(m.body), `horizons_cache_tier_errors_total{cache="server",tier="redis"}`) {
		t.Fatalf("metrics lack the cache tier gauge:\n%s", m.body)
	}
	// A warmed position is a hit without having been asked before.
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 3).Format(time.RFC3339)
	if r := ts.do("GET", "/api/v1/ephemeris/position?body=saturn&site=vla&time="+day, "", nil, nil); r.header.Get("X-Cache") != "HIT" {
		t.Fatalf("warmed position was a %s", r.header.Get("X-Cache"))
	}
}

// TestBackendUsageCached: dashboard polls of the simulated cluster's GPU
// usage within a second share one backend call.
func TestBackendUsageCached(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(-1))
	for range 3 {
		if r := ts.do("GET", "/api/v1/cluster/usage", testAdminToken, nil, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"gpus"`) {
			t.Fatalf("cluster usage: %d %s", r.status, r.body)
		}
	}
	var st cacheStatsJSON
	r := ts.do("GET", "/api/v1/admin/cache", testAdminToken, nil, nil)
	r.decode(t, &st)
	// The polls after the first load are hits (allowing one reload should
	// a slow machine see the 1 s TTL pass between polls).
	if st.LoadErrors != 0 || st.Loads < 1 || st.Loads > 2 {
		t.Fatalf("3 usage polls: %d loads, %d failed: %s", st.Loads, st.LoadErrors, r.body)
	}
}
