package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/analytics"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// TestAnalyticsSeries runs a job through the server and reads its series
// back over REST: the collector consumed the lifecycle events.
func TestAnalyticsSeries(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(50*time.Millisecond))
	alice := ts.createUser(testAdminToken, "alice", "user")
	job, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "VLASS2.1.T10t01"}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	ts.waitJob(alice.Token, job.ID, func(j jobJSON) bool { return j.State == string(orchestrator.StateCompleted) })

	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	get := func(tok string, q url.Values) resp {
		return ts.do("GET", "/api/v1/analytics/series?"+q.Encode(), tok, nil, nil)
	}
	var res analytics.Result
	deadline := time.Now().Add(waitLimit)
	for {
		r := get(alice.Token, url.Values{"metric": {"job_run_seconds"}, "agent": {"alphacal"}, "from": {from}, "step": {"1h"}, "agg": {"count"}, "group_by": {"agent,backend"}})
		if r.status != http.StatusOK {
			t.Fatalf("series: %d %s", r.status, r.body)
		}
		r.decode(t, &res)
		if len(res.Series) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run-time series after the job completed: %s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n float64
	for _, v := range res.Series[0].Values {
		if v != nil {
			n += *v
		}
	}
	if n != 1 || res.Series[0].Labels.Agent != "alphacal" || res.Series[0].Labels.Backend == "" || res.StepSeconds != 3600 {
		t.Fatalf("run time count %v, labels %+v, step %v; want 1 run of alphacal on a backend, step 3600", n, res.Series[0].Labels, res.StepSeconds)
	}

	// Bad input is a 400 naming the parameter.
	now := time.Now().UTC()
	for _, c := range []struct {
		q     url.Values
		field string
	}{
		{url.Values{"metric": {"cpu_magic"}}, "metric"},
		{url.Values{"metric": {"events"}, "from": {now.Format(time.RFC3339)}, "to": {now.Add(-time.Hour).Format(time.RFC3339)}}, "to"},
		{url.Values{"metric": {"events"}, "from": {now.Add(-5000 * 24 * time.Hour).Format(time.RFC3339)}, "step": {"1d"}}, "step"},
		{url.Values{"metric": {"events"}, "from": {now.Add(-5000 * 24 * time.Hour).Format(time.RFC3339)}, "step": {"86400"}}, "from"},
		{url.Values{"metric": {"events"}, "step": {"1s"}}, "step"},
		{url.Values{"metric": {"events"}, "agg": {"p99"}}, "agg"},
		{url.Values{"metric": {"events"}, "from": {"yesterday"}}, "from"},
		{url.Values{"metric": {"events"}, "group_by": {"node"}}, "group_by"},
	} {
		r := get(testAdminToken, c.q)
		if r.status != http.StatusBadRequest || r.apiErr(t).Field != c.field {
			t.Errorf("%v: %d %s; want 400 naming %s", c.q, r.status, r.body, c.field)
		}
	}
	// A user sees no other user's series; an admin does.
	if r := get(alice.Token, url.Values{"metric": {"events"}, "user": {"someone-else"}}); r.status != http.StatusForbidden {
		t.Errorf("alice reading another user's series: %d %s, want 403", r.status, r.body)
	}
	if r := get(alice.Token, url.Values{"metric": {"events"}, "group_by": {"user"}}); r.status != http.StatusForbidden {
		t.Errorf("alice grouping by user: %d %s, want 403", r.status, r.body)
	}
	r = get(testAdminToken, url.Values{"metric": {"events"}, "from": {from}, "step": {"1h"}, "agg": {"count"}, "group_by": {"user"}})
	if r.status != http.StatusOK {
		t.Fatalf("admin grouping by user: %d %s", r.status, r.body)
	}
	r.decode(t, &res)
	if len(res.Series) != 1 || res.Series[0].Labels.User != alice.ID {
		t.Fatalf("events by user: %+v, want one series for alice (%s)", res.Series, alice.ID)
	}
	if r := ts.do("GET", "/api/v1/analytics/series?metric=events", "", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", r.status)
	}
}

// TestAnalyticsAlertsAPI: the alert endpoints are admin only, list the
// built-in rules, and name bad input; the catalogue knows alert events.
func TestAnalyticsAlertsAPI(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(50*time.Millisecond))
	alice := ts.createUser(testAdminToken, "alice", "user")
	if r := ts.do("GET", "/api/v1/analytics/alerts", alice.Token, nil, nil); r.status != http.StatusForbidden {
		t.Fatalf("alice listing alerts: %d, want 403", r.status)
	}
	r := ts.do("GET", "/api/v1/analytics/alerts?state=all", testAdminToken, nil, nil)
	var body struct {
		Alerts []analytics.Alert `json:"alerts"`
		Rules  []analytics.Rule  `json:"rules"`
	}
	r.decode(t, &body)
	names := map[string]bool{}
	for _, ru := range body.Rules {
		names[ru.Name] = true
	}
	if r.status != http.StatusOK || body.Alerts == nil || !names["queue-depth-surge"] || !names["gpu-utilisation-drop-clock"] {
		t.Fatalf("alerts: %d %s", r.status, r.body)
	}
	if r := ts.do("GET", "/api/v1/analytics/alerts?state=maybe", testAdminToken, nil, nil); r.status != http.StatusBadRequest || r.apiErr(t).Field != "state" {
		t.Errorf("state=maybe: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", "/api/v1/analytics/alerts/nope/acknowledge", testAdminToken, nil, nil); r.status != http.StatusNotFound {
		t.Errorf("ack unknown: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", "/api/v1/analytics/alerts/nope/silence", testAdminToken, map[string]string{"duration": "forever"}, nil); r.status != http.StatusBadRequest || r.apiErr(t).Field != "duration" {
		t.Errorf("silence forever: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", "/api/v1/analytics/alerts/nope/silence", testAdminToken, map[string]string{"duration": "1h"}, nil); r.status != http.StatusNotFound {
		t.Errorf("silence unknown: %d %s", r.status, r.body)
	}
	cat := eventsCatalogue()
	for _, typ := range []events.Type{analytics.TypeAlertRaised, analytics.TypeAlertResolved} {
		if _, ok := cat.Lookup(typ); !ok {
			t.Errorf("catalogue lacks %s", typ)
		}
	}
}

// analyticsOpenAPICalls exercises the analytics operations of
// /openapi.json for TestOpenAPI.
func analyticsOpenAPICalls(t *testing.T, c *apiChecker, alice userResponse, admin string) {
	c.call("GET", "/api/v1/analytics/metrics", alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/analytics/metrics", "", nil, nil, 401)
	c.call("GET", "/api/v1/analytics/series?metric=events&agg=count&step=1h&group_by=agent", alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/analytics/series?metric=nope", alice.Token, nil, nil, 400)
	c.call("GET", "/api/v1/analytics/series?metric=events&group_by=user", alice.Token, nil, nil, 403)
	c.call("GET", "/api/v1/analytics/series?metric=events", "", nil, nil, 401)
	c.call("GET", "/api/v1/analytics/alerts?state=all", admin, nil, nil, 200)
	c.call("GET", "/api/v1/analytics/alerts", alice.Token, nil, nil, 403)
	c.call("GET", "/api/v1/analytics/alerts?state=maybe", admin, nil, nil, 400)
	c.call("GET", "/api/v1/analytics/alerts", "", nil, nil, 401)
	c.call("POST", "/api/v1/analytics/alerts/nope/acknowledge", admin, nil, nil, 404)
	c.call("POST", "/api/v1/analytics/alerts/nope/acknowledge", alice.Token, nil, nil, 403)
	c.call("POST", "/api/v1/analytics/alerts/nope/acknowledge", "", nil, nil, 401)
	c.call("POST", "/api/v1/analytics/alerts/nope/silence", admin, map[string]string{"duration": "1h"}, nil, 404)
	c.call("POST", "/api/v1/analytics/alerts/nope/silence", admin, map[string]string{"duration": "forever"}, nil, 400)
	c.call("POST", "/api/v1/analytics/alerts/nope/silence", alice.Token, map[string]string{"duration": "1h"}, nil, 403)
	c.call("POST", "/api/v1/analytics/alerts/nope/silence", "", map[string]string{"duration": "1h"}, nil, 401)
}

// TestAnalyticsDashboardPanel: the panel and its script are served and the
// main dashboard links to it.
func TestAnalyticsDashboardPanel(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(50*time.Millisecond))
	for path, want := range map[string]string{
		"/dashboard/analytics.html": `src="/dashboard/analytics.js"`,
		"/dashboard/analytics.js":   "/api/v1/analytics/series?",
		"/":                         `href="/dashboard/analytics.html"`,
	} {
		r := ts.do("GET", path, "", nil, nil)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, r.status, want)
		}
	}
}
