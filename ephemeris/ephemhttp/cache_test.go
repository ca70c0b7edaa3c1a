package ephemhttp_test

import (
	"net/http/httptest"
	"testing"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/ephemeris/ephemhttp"
)

func TestAnswersCached(t *testing.T) {
	c, err := cache.NewMemoryCache(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := ephemhttp.NewHandler(&ephemhttp.Config{Cache: c})
	get := func(url string) (int, string, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
		return rec.Code, rec.Header().Get("X-Cache"), rec.Body.String()
	}
	code, x1, body1 := get("/api/v1/ephemeris/position?body=mars&time=2026-11-27T00:00:00Z&site=vla")
	if code != 200 || x1 != "MISS" {
		t.Fatalf("first answer: %d %s %s", code, x1, body1)
	}
	// Same query, parameters in another order: served from the cache,
	// byte for byte.
	code, x2, body2 := get("/api/v1/ephemeris/position?site=vla&time=2026-11-27T00:00:00Z&body=mars")
	if code != 200 || x2 != "HIT" || body2 != body1 {
		t.Fatalf("second answer: %d %s\n%s\nwant the first:\n%s", code, x2, body2, body1)
	}
	if s := c.Stats(); s.Hits != 1 {
		t.Fatalf("cache hits = %d, want 1", s.Hits)
	}
	// Another time is another answer.
	if _, x, _ := get("/api/v1/ephemeris/position?body=mars&time=2026-11-28T00:00:00Z&site=vla"); x != "MISS" {
		t.Fatalf("a different query was a %s", x)
	}
	// Answers that used "now" and errors are never cached.
	for range 2 {
		if _, x, _ := get("/api/v1/ephemeris/resolve?target=mars"); x != "MISS" {
			t.Fatalf("an answer computed for now was served from the cache")
		}
		if code, x, _ := get("/api/v1/ephemeris/position?body=pluto&time=2026-11-27T00:00:00Z"); code != 400 || x != "MISS" {
			t.Fatalf("a bad request: %d %s", code, x)
		}
	}
	// The tag drops them all.
	if err := c.DeleteTag(t.Context(), ephemhttp.CacheTag); err != nil {
		t.Fatal(err)
	}
	if _, x, _ := get("/api/v1/ephemeris/position?body=mars&time=2026-11-27T00:00:00Z&site=vla"); x != "MISS" {
		t.Fatalf("after DeleteTag: %s", x)
	}
}
