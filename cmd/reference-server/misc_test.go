package main

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cosmic-horizons/horizons/orchestrator"
)

// metricSample returns the value of the first sample of name whose labels
// include every label in want.
func metricSample(t *testing.T, body, name string, want ...string) (float64, bool) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{.*\})? (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		ok := true
		for _, w := range want {
			if !strings.Contains(m[1], w) {
				ok = false
			}
		}
		if ok {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("%s value %q", name, m[2])
			}
			return v, true
		}
	}
	return 0, false
}

func TestProbesMetricsEphemerisDashboard(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(50*time.Millisecond))
	if r := ts.do("GET", "/healthz", "", nil, nil); r.status != http.StatusOK {
		t.Fatalf("healthz %d", r.status)
	}
	if r := ts.do("GET", "/readyz", "", nil, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "ready") {
		t.Fatalf("readyz %d %s", r.status, r.body)
	}

	ws, _, err := ts.dialWS(testAdminToken, "", false)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := ts.submit(testAdminToken, map[string]any{"agent": "alphacal", "dataset_id": "m1"}, nil)
	until(t, ws.events, terminalEvent(j.ID))
	ts.do("GET", "/api/v1/jobs/"+j.ID, testAdminToken, nil, nil)
	ts.do("GET", "/api/v1/jobs/"+j.ID, "", nil, nil) // 401

	r := ts.do("GET", "/metrics", "", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("metrics %d", r.status)
	}
	body := string(r.body)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"horizons_jobs", []string{`state="COMPLETED"`}, 1},
		{"horizons_jobs", []string{`state="RUNNING"`}, 0},
		{"horizons_http_requests_total", []string{`route="POST /api/v1/jobs"`, `code="201"`}, 1},
		{"horizons_http_requests_total", []string{`route="GET /api/v1/jobs/{id}"`, `code="200"`}, 1},
		{"horizons_http_requests_total", []string{`route="GET /api/v1/jobs/{id}"`, `code="401"`}, 1},
		{"horizons_stream_clients", []string{`transport="ws"`}, 1},
		{"horizons_events_received_total", []string{`type="job.completed"`}, 1},
		{"horizons_events_received_total", []string{`type="job.submitted"`}, 1},
	}
	for _, c := range checks {
		v, ok := metricSample(t, body, c.name, c.labels...)
		if !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	// Every event the admin's socket received was counted as forwarded.
	if v, _ := metricSample(t, body, "horizons_events_forwarded_total", `transport="ws"`); v < 5 {
		t.Errorf("events forwarded over ws = %v, want >= 5", v)
	}
	if v, ok := metricSample(t, body, "horizons_http_request_duration_seconds_count", `route="POST /api/v1/jobs"`); !ok || v != 1 {
		t.Errorf("latency histogram count for submit = %v", v)
	}
	if strings.Contains(body, testAdminToken) {
		t.Error("token in metrics")
	}

	// The ephemeris endpoints are public.
	r = ts.do("GET", "/api/v1/ephemeris/julian?time=2000-01-01T12:00:00Z", "", nil, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"jd_utc":2451545`) {
		t.Errorf("ephemeris: %d %s", r.status, r.body)
	}
	// Unknown API paths are JSON 404s.
	r = ts.do("GET", "/api/v1/nothing", testAdminToken, nil, nil)
	if r.status != http.StatusNotFound || r.apiErr(t).Code != "not_found" {
		t.Errorf("unknown path: %d %s", r.status, r.body)
	}
	// The dashboard.
	r = ts.do("GET", "/", "", nil, nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.body), "/api/v1/ws") || !strings.Contains(string(r.body), "/api/v1/jobs") {
		t.Errorf("dashboard: %d %s", r.status, r.header.Get("Content-Type"))
	}
}

// TestHeartbeatDropsSilentClient: a WebSocket peer that never reads never
// answers pings, and the server closes it after the pong timeout.
func TestHeartbeatDropsSilentClient(t *testing.T) {
	opts := testOptions(50 * time.Millisecond)
	// A pong timeout long enough that the reading client always answers in
	// time, even on a loaded machine or under -race.
	opts.PingInterval, opts.PongTimeout = 20*time.Millisecond, time.Second
	ts := startServer(t, t.TempDir(), adminEnv, opts)
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, "ws://"+ts.host+"/api/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testAdminToken}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	// A reading client next to it stays connected through many pings.
	live, _, err := ts.dialWS(testAdminToken, "", false)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		v, _ := metricSample(t, string(ts.do("GET", "/metrics", "", nil, nil).body), "horizons_stream_clients_dropped_total", `transport="ws"`, `reason="heartbeat"`)
		if v >= 1 {
			if v != 1 {
				t.Fatalf("%v clients dropped by heartbeat, want only the silent one", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("silent client never dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	j, _ := ts.submit(testAdminToken, map[string]any{"agent": "alphacal", "dataset_id": "hb"}, nil)
	evs := until(t, live.events, terminalEvent(j.ID))
	if evs[len(evs)-1].Type != "job.completed" {
		t.Fatalf("live client: %v", types(evs))
	}
	if got := ts.getJob(testAdminToken, j.ID); got.State != string(orchestrator.StateCompleted) {
		t.Fatalf("job %+v", got)
	}
}
