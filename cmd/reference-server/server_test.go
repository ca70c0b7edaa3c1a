package main

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

var adminEnv = map[string]string{envAdminToken: testAdminToken}

// checkLifecycle checks the Done-when event list of one completed job: it
// starts with job.submitted, job.queued, job.running, has at least one
// job.progress, ends with job.completed, every sequence number follows the
// previous one, and all carry the correlation id corr.
func checkLifecycle(t *testing.T, evs []events.Event, jobID, corr string) {
	t.Helper()
	tp := types(evs)
	if len(evs) < 5 {
		t.Fatalf("got %d events %v; want at least submitted, queued, running, progress, completed", len(evs), tp)
	}
	want := []events.Type{events.JobSubmitted, events.JobQueued, events.JobRunning}
	for i, w := range want {
		if evs[i].Type != w {
			t.Fatalf("event %d is %s, want %s (all: %v)", i, evs[i].Type, w, tp)
		}
	}
	if last := evs[len(evs)-1].Type; last != events.JobCompleted {
		t.Fatalf("last event is %s, want job.completed (all: %v)", last, tp)
	}
	for i, e := range evs[3 : len(evs)-1] {
		if e.Type != events.JobProgress {
			t.Fatalf("event %d is %s between running and completed, want job.progress (all: %v)", i+3, e.Type, tp)
		}
	}
	for i, e := range evs {
		if e.Subject != jobID {
			t.Errorf("event %d subject %s, want %s", i, e.Subject, jobID)
		}
		if e.Sequence != int64(i+1) {
			t.Errorf("event %d (%s) has sequence %d, want %d", i, e.Type, e.Sequence, i+1)
		}
		if e.CorrelationID != corr {
			t.Errorf("event %d (%s) has correlation id %q, want %q", i, e.Type, e.CorrelationID, corr)
		}
	}
}

func sameEvents(t *testing.T, what string, got, want []events.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events %v, want %d %v", what, len(got), types(got), len(want), types(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Type != w.Type || g.Sequence != w.Sequence || g.CorrelationID != w.CorrelationID || !g.Time.Equal(w.Time) {
			t.Errorf("%s: event %d = %s %s #%d, want %s %s #%d", what, i, g.ID, g.Type, g.Sequence, w.ID, w.Type, w.Sequence)
		}
	}
}

// TestDoneWhen is the acceptance scenario with a clock backend:
// with HORIZONS_ADMIN_TOKEN and an empty data dir, WebSocket and SSE
// clients connected beforehand see the whole lifecycle in order, with one
// correlation id, and GET .../events returns the same list.
func TestDoneWhen(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(400*time.Millisecond))
	if strings.Contains(ts.stdout.String(), "Generated the admin token") {
		t.Fatalf("a token was generated although %s is set:\n%s", envAdminToken, ts.stdout.String())
	}
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "")
	if bob.Role != roleUser || alice.Role != roleUser || alice.ID == bob.ID || alice.Token == "" || alice.Token == bob.Token {
		t.Fatalf("users: %+v %+v", alice, bob)
	}

	aliceWS, _, err := ts.dialWS(alice.Token, "", false)
	if err != nil {
		t.Fatal(err)
	}
	bobWS, _, err := ts.dialWS(bob.Token, "", true) // token as query parameter
	if err != nil {
		t.Fatal(err)
	}
	adminWS, _, err := ts.dialWS(testAdminToken, "", false)
	if err != nil {
		t.Fatal(err)
	}
	aliceSSE, r := ts.dialSSE(alice.Token, "")
	if aliceSSE == nil {
		t.Fatalf("sse: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("sse content type %q", ct)
	}

	const corr = "req-7f3a-e2e"
	job, r := ts.submit(alice.Token, map[string]any{
		"agent": "ImageReconstruction", "dataset_id": "VLASS3.1.T01t01", "gpus": 2,
		"params": map[string]any{"image_size": 512}, "priority": 5, "idempotency_key": "first",
	}, map[string]string{"X-Correlation-ID": corr})
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	if job.Owner != alice.ID || job.CorrelationID != corr || job.Agent != agents.NameImageReconstruction || job.GPUs != 2 || job.Priority != 5 {
		t.Fatalf("submitted job %+v", job)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/jobs/"+job.ID {
		t.Errorf("Location %q", loc)
	}
	if c := r.header.Get("X-Correlation-ID"); c != corr {
		t.Errorf("response X-Correlation-ID %q, want %q", c, corr)
	}

	wsEvents := until(t, aliceWS.events, terminalEvent(job.ID))
	checkLifecycle(t, wsEvents, job.ID, corr)

	history := ts.jobEvents(alice.Token, job.ID)
	sameEvents(t, "GET events vs WebSocket", history, wsEvents)

	sseEvents := until(t, aliceSSE.events, terminalEvent(job.ID))
	sameEvents(t, "SSE vs WebSocket", sseEvents, wsEvents)
	for i := range sseEvents {
		if name := <-aliceSSE.names; name != string(sseEvents[i].Type) {
			t.Errorf("SSE event %d named %q, want %q", i, name, sseEvents[i].Type)
		}
	}
	sameEvents(t, "admin WebSocket", until(t, adminWS.events, terminalEvent(job.ID)), wsEvents)

	// Every event's payload names its owner; the user's stream saw only
	// hers.
	for _, e := range wsEvents {
		var d events.JobData
		if err := e.Decode(&d); err != nil || d.Owner != alice.ID {
			t.Errorf("event %s owner %q (err %v), want %s", e.Type, d.Owner, err, alice.ID)
		}
	}

	final := ts.getJob(alice.Token, job.ID)
	if final.State != string(orchestrator.StateCompleted) || final.Progress != 100 || final.Attempts != 1 || final.Backend != "clock" {
		t.Fatalf("final job %+v", final)
	}
	if final.StartedAt == nil || final.FinishedAt == nil || final.FinishedAt.Before(*final.StartedAt) || final.StartedAt.Before(*final.CreatedAt) {
		t.Fatalf("final job times created %v started %v finished %v", final.CreatedAt, final.StartedAt, final.FinishedAt)
	}

	// Bob's stream got none of alice's events: the first thing it
	// receives is his own job's first event, although alice's were all
	// published before.
	bobJob, r := ts.submit(bob.Token, map[string]any{"agent": "alphacal", "dataset_id": "VLASS2.2"}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("bob submit: %d %s", r.status, r.body)
	}
	first := until(t, bobWS.events, func(events.Event) bool { return true })
	if first[0].Subject != bobJob.ID || first[0].Type != events.JobSubmitted {
		t.Fatalf("bob's first streamed event is %s of %s, want job.submitted of his job %s", first[0].Type, first[0].Subject, bobJob.ID)
	}
	if bobJob.CorrelationID == "" || bobJob.CorrelationID == corr {
		t.Errorf("bob's job correlation id %q; want a generated one", bobJob.CorrelationID)
	}

	// No token reaches the (debug-level) logs, not even bob's, which came
	// in a query string.
	ts.stop()
	logs := ts.logs.String()
	if !strings.Contains(logs, "/api/v1/ws") {
		t.Fatalf("the debug access log is missing; logs:\n%s", logs)
	}
	for _, tok := range []string{testAdminToken, alice.Token, bob.Token} {
		if strings.Contains(logs, tok) || strings.Contains(ts.stdout.String(), tok) {
			t.Fatal("a token appears in the logs or on stdout")
		}
	}
}

// TestJobJSON checks the job document's exact field set, null times and
// RFC 3339 times with a zone.
func TestJobJSON(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(time.Hour))
	r := ts.do("POST", "/api/v1/jobs", testAdminToken, map[string]any{"agent": "anomaly-detection", "dataset_id": "long-1"}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	var raw map[string]json.RawMessage
	r.decode(t, &raw)
	want := []string{"id", "owner", "agent", "dataset_id", "gpus", "params", "priority", "state", "progress", "attempts",
		"correlation_id", "backend", "error", "created_at", "updated_at", "started_at", "finished_at"}
	var got []string
	for k := range raw {
		got = append(got, k)
	}
	sort.Strings(got)
	sorted := append([]string(nil), want...)
	sort.Strings(sorted)
	if strings.Join(got, ",") != strings.Join(sorted, ",") {
		t.Fatalf("job fields\n got %v\nwant %v", got, sorted)
	}
	if string(raw["started_at"]) != "null" || string(raw["finished_at"]) != "null" {
		t.Errorf("unset times: started_at %s finished_at %s, want null", raw["started_at"], raw["finished_at"])
	}
	var created string
	if err := json.Unmarshal(raw["created_at"], &created); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339Nano, created); err != nil || !(strings.HasSuffix(created, "Z") || strings.ContainsAny(created[len(created)-6:], "+-")) {
		t.Errorf("created_at %q is not RFC 3339 with a zone (%v)", created, err)
	}
	// Defaults applied by the agent are visible in params.
	var params map[string]any
	if err := json.Unmarshal(raw["params"], &params); err != nil {
		t.Fatal(err)
	}
	if params["seed_sigma"] != 5.0 {
		t.Errorf("params %v: want the agent default seed_sigma 5", params)
	}
}
