package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

func TestAuthErrors(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(50*time.Millisecond))
	alice := ts.createUser(testAdminToken, "alice", "user")

	for _, tc := range []struct {
		name, method, path, token string
		hdr                       map[string]string
	}{
		{"no token", "GET", "/api/v1/jobs", "", nil},
		{"unknown token", "GET", "/api/v1/jobs", "hz_not-a-real-token", nil},
		{"basic scheme", "GET", "/api/v1/jobs", "", map[string]string{"Authorization": "Basic " + testAdminToken}},
		{"query token on REST", "GET", "/api/v1/jobs?token=" + testAdminToken, "", nil},
		{"submit without token", "POST", "/api/v1/jobs", "", nil},
		{"users without token", "POST", "/api/v1/users", "", nil},
	} {
		r := ts.do(tc.method, tc.path, tc.token, nil, tc.hdr)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s: status %d %s, want 401", tc.name, r.status, r.body)
			continue
		}
		if e := r.apiErr(t); e.Code != "unauthenticated" {
			t.Errorf("%s: code %q", tc.name, e.Code)
		}
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, r.header.Get("WWW-Authenticate"))
		}
	}

	// A user may not create users.
	r := ts.do("POST", "/api/v1/users", alice.Token, map[string]string{"name": "mallory", "role": "admin"}, nil)
	if r.status != http.StatusForbidden || r.apiErr(t).Code != "permission_denied" {
		t.Fatalf("user creating a user: %d %s, want 403", r.status, r.body)
	}
	// Bad user bodies name the field; a duplicate name is a conflict.
	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{"name":"carol","role":"root"}`, "role"},
		{`{"name":"","role":"user"}`, "name"},
		{`{"name":"has space"}`, "name"},
		{`{"name":"carol","admin":true}`, "admin"},
	} {
		r := ts.do("POST", "/api/v1/users", testAdminToken, tc.body, nil)
		if r.status != http.StatusBadRequest || r.apiErr(t).Field != tc.field {
			t.Errorf("user body %s: %d %s, want 400 naming %q", tc.body, r.status, r.body, tc.field)
		}
	}
	r = ts.do("POST", "/api/v1/users", testAdminToken, `{"name":"alice"}`, nil)
	if r.status != http.StatusConflict || r.apiErr(t).Field != "name" {
		t.Errorf("duplicate user: %d %s, want 409", r.status, r.body)
	}

	// A WebSocket without a token is refused before the upgrade.
	_, res, err := ts.dialWS("", "", false)
	if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("websocket without token: err %v, response %v; want 401", err, res)
	}
	if sse, r := ts.dialSSE("", ""); sse != nil || r.status != http.StatusUnauthorized {
		t.Errorf("SSE without token: %d, want 401", r.status)
	}
}

func TestJobValidationErrors(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(50*time.Millisecond))
	tok := testAdminToken
	for _, tc := range []struct {
		name  string
		body  string
		hdr   map[string]string
		field string
	}{
		{"unknown field", `{"agent":"alphacal","dataset_id":"d1","gpu_count":2}`, nil, "gpu_count"},
		{"memory_mb is not in the contract", `{"agent":"alphacal","dataset_id":"d1","memory_mb":2}`, nil, "memory_mb"},
		{"gpus as string", `{"agent":"alphacal","dataset_id":"d1","gpus":"two"}`, nil, "gpus"},
		{"priority as float", `{"agent":"alphacal","dataset_id":"d1","priority":1.5}`, nil, "priority"},
		{"unknown agent", `{"agent":"deep-thought","dataset_id":"d1"}`, nil, "agent"},
		{"missing agent", `{"dataset_id":"d1"}`, nil, "agent"},
		{"missing dataset", `{"agent":"alphacal"}`, nil, "dataset_id"},
		{"bad dataset", `{"agent":"alphacal","dataset_id":"a b"}`, nil, "dataset_id"},
		{"too many gpus", `{"agent":"alphacal","dataset_id":"d1","gpus":65}`, nil, "gpus"},
		{"negative gpus", `{"agent":"alphacal","dataset_id":"d1","gpus":-1}`, nil, "gpus"},
		{"priority range", `{"agent":"alphacal","dataset_id":"d1","priority":101}`, nil, "priority"},
		{"params not object", `{"agent":"alphacal","dataset_id":"d1","params":[1]}`, nil, "params"},
		{"agent param", `{"agent":"image-reconstruction","dataset_id":"d1","params":{"image_size":300}}`, nil, "params.image_size"},
		{"unknown agent param", `{"agent":"alphacal","dataset_id":"d1","params":{"colour":"red"}}`, nil, "params.colour"},
		{"long correlation id", `{"agent":"alphacal","dataset_id":"d1"}`, map[string]string{"X-Correlation-ID": strings.Repeat("c", 129)}, "X-Correlation-ID"},
		{"empty body", ``, nil, ""},
		{"not json", `{"agent":`, nil, ""},
		{"array body", `[1,2]`, nil, ""},
		{"two values", `{"agent":"alphacal","dataset_id":"d1"} {}`, nil, ""},
	} {
		r := ts.do("POST", "/api/v1/jobs", tok, tc.body, tc.hdr)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d %s, want 400", tc.name, r.status, r.body)
			continue
		}
		e := r.apiErr(t)
		if e.Code != "invalid_argument" || e.Field != tc.field || e.Message == "" {
			t.Errorf("%s: error %+v, want invalid_argument naming %q", tc.name, e, tc.field)
		}
		if tc.field != "" && !strings.Contains(e.Message, strings.TrimPrefix(tc.field, "params.")) {
			t.Errorf("%s: message %q does not name %s", tc.name, e.Message, tc.field)
		}
	}
	for _, tc := range []struct{ query, field string }{
		{"?state=bogus", "state"},
		{"?state=RUNNING,nope", "state"},
		{"?limit=0", "limit"},
		{"?limit=abc", "limit"},
		{"?limit=1001", "limit"},
		{"?cursor=not-a-cursor", "cursor"},
	} {
		r := ts.do("GET", "/api/v1/jobs"+tc.query, tok, nil, nil)
		if r.status != http.StatusBadRequest || r.apiErr(t).Field != tc.field {
			t.Errorf("list %s: %d %s, want 400 naming %q", tc.query, r.status, r.body, tc.field)
		}
	}
	// Nothing was stored by the rejected submissions.
	var l jobList
	ts.do("GET", "/api/v1/jobs", tok, nil, nil).decode(t, &l)
	if len(l.Jobs) != 0 {
		t.Fatalf("%d jobs stored after only invalid submissions", len(l.Jobs))
	}
}

// hiddenLength hides the body length, so the request is sent chunked.
type hiddenLength struct{ io.Reader }

func TestBodyTooLarge(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(50*time.Millisecond))
	big := []byte(`{"agent":"alphacal","dataset_id":"d1","params":{"x":"` + strings.Repeat("a", maxBodyBytes) + `"}}`)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(big)
		if chunked {
			body = hiddenLength{body}
		}
		req, _ := http.NewRequest("POST", ts.base+"/api/v1/jobs", body)
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		r := resp{status: res.StatusCode, body: b}
		if r.status != http.StatusRequestEntityTooLarge || r.apiErr(t).Code != "payload_too_large" {
			t.Errorf("chunked=%v: %d %s, want 413", chunked, r.status, b)
		}
	}
	// Just under the limit is decoded (and then rejected for its content,
	// not its size).
	under := `{"agent":"alphacal","dataset_id":"d1","params":{"x":"` + strings.Repeat("a", maxBodyBytes-200) + `"}}`
	if r := ts.do("POST", "/api/v1/jobs", testAdminToken, under, nil); r.status != http.StatusBadRequest {
		t.Errorf("body under the limit: %d %s, want 400 (params too large for the orchestrator)", r.status, r.body[:min(len(r.body), 200)])
	}
}

func TestOwnershipIdempotencyCancelList(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(100*time.Millisecond))
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "user")

	long, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "long-run", "idempotency_key": "k1"}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	// The same key from the same owner returns the first job with 200.
	again, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "long-run", "idempotency_key": "k1"}, nil)
	if r.status != http.StatusOK || again.ID != long.ID {
		t.Fatalf("repeated idempotency key: %d, job %s, want 200 and %s", r.status, again.ID, long.ID)
	}
	// Keys are per owner.
	bobs, r := ts.submit(bob.Token, map[string]any{"agent": "alphacal", "dataset_id": "long-run", "idempotency_key": "k1"}, nil)
	if r.status != http.StatusCreated || bobs.ID == long.ID {
		t.Fatalf("bob with alice's key: %d job %s", r.status, bobs.ID)
	}

	// Another user's job is a 404 everywhere, exactly like a missing one.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/jobs/" + long.ID},
		{"GET", "/api/v1/jobs/" + long.ID + "/events"},
		{"POST", "/api/v1/jobs/" + long.ID + "/cancel"},
		{"GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000"},
	} {
		r := ts.do(tc.method, tc.path, bob.Token, nil, nil)
		if r.status != http.StatusNotFound || r.apiErr(t).Code != "not_found" {
			t.Errorf("bob %s %s: %d %s, want 404", tc.method, tc.path, r.status, r.body)
		}
	}
	if _, res, err := ts.dialWS(bob.Token, "job="+long.ID, false); err == nil || res == nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("bob watching alice's job over WebSocket: err %v; want 404", err)
	}
	if sse, r := ts.dialSSE(bob.Token, "?job="+long.ID); sse != nil || r.status != http.StatusNotFound {
		t.Errorf("bob watching alice's job over SSE: %d; want 404", r.status)
	}
	// The admin sees it.
	if j := ts.getJob(testAdminToken, long.ID); j.Owner != alice.ID {
		t.Fatalf("admin sees owner %q", j.Owner)
	}

	// Alice watches only her long job over the WebSocket while a short
	// job of hers runs too.
	watch, _, err := ts.dialWS(alice.Token, "job="+long.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	short, _ := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "short"}, nil)
	done := ts.waitJob(alice.Token, short.ID, func(j jobJSON) bool { return j.State == string(orchestrator.StateCompleted) })
	if done.Progress != 100 {
		t.Errorf("completed job progress %v", done.Progress)
	}

	// Cancelling a finished job is a 409.
	r = ts.do("POST", "/api/v1/jobs/"+short.ID+"/cancel", alice.Token, nil, nil)
	if r.status != http.StatusConflict || r.apiErr(t).Code != "conflict" {
		t.Fatalf("cancel completed job: %d %s, want 409", r.status, r.body)
	}
	// Cancelling the live one works, with a reason, and is idempotent.
	ts.waitJob(alice.Token, long.ID, func(j jobJSON) bool { return j.State == string(orchestrator.StateRunning) })
	r = ts.do("POST", "/api/v1/jobs/"+long.ID+"/cancel", alice.Token, `{"reason":"wrong dataset"}`, nil)
	if r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	var c jobJSON
	r.decode(t, &c)
	if c.State != string(orchestrator.StateCancelled) || c.FinishedAt == nil {
		t.Fatalf("cancelled job %+v", c)
	}
	r = ts.do("POST", "/api/v1/jobs/"+long.ID+"/cancel", alice.Token, nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("second cancel: %d %s, want 200", r.status, r.body)
	}
	if r := ts.do("POST", "/api/v1/jobs/"+long.ID+"/cancel", alice.Token, `{"reason":"`+strings.Repeat("r", maxReasonLen+1)+`"}`, nil); r.status != http.StatusBadRequest || r.apiErr(t).Field != "reason" {
		t.Errorf("long reason: %d %s", r.status, r.body)
	}
	// The filtered stream saw only the long job, up to its cancellation,
	// whose reason names the user and her reason.
	got := until(t, watch.events, terminalEvent(long.ID))
	for _, e := range got {
		if e.Subject != long.ID {
			t.Fatalf("job-filtered stream got an event of %s", e.Subject)
		}
	}
	var d events.JobData
	if err := got[len(got)-1].Decode(&d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Reason, "alice") || !strings.Contains(d.Reason, "wrong dataset") {
		t.Errorf("cancel reason %q", d.Reason)
	}
	evs := ts.jobEvents(alice.Token, long.ID)
	if evs[len(evs)-1].Type != events.JobCancelled {
		t.Errorf("history ends with %s", evs[len(evs)-1].Type)
	}
	// The stream was opened after the submission: it holds the tail of
	// the history.
	if len(got) > len(evs) {
		t.Fatalf("stream has %d events, history %d", len(got), len(evs))
	}
	sameEvents(t, "job-filtered stream vs history", got, evs[len(evs)-len(got):])

	// Listing: a user sees her own jobs only, the admin everyone's;
	// pages of one follow the cursor without repeats.
	ids := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("cursor never ends")
		}
		var l jobList
		r := ts.do("GET", "/api/v1/jobs?limit=1&cursor="+cursor, alice.Token, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		r.decode(t, &l)
		for _, j := range l.Jobs {
			if j.Owner != alice.ID || ids[j.ID] {
				t.Fatalf("page %d: job %s owner %s (repeat %v)", page, j.ID, j.Owner, ids[j.ID])
			}
			ids[j.ID] = true
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if len(ids) != 2 || !ids[long.ID] || !ids[short.ID] {
		t.Fatalf("alice listed %v, want her two jobs", ids)
	}
	var all jobList
	ts.do("GET", "/api/v1/jobs", testAdminToken, nil, nil).decode(t, &all)
	if len(all.Jobs) != 3 {
		t.Fatalf("admin listed %d jobs, want 3", len(all.Jobs))
	}
	var cancelled jobList
	ts.do("GET", "/api/v1/jobs?state=cancelled,COMPLETED", alice.Token, nil, nil).decode(t, &cancelled)
	if len(cancelled.Jobs) != 2 {
		t.Fatalf("state filter returned %d jobs, want 2", len(cancelled.Jobs))
	}
	var running jobList
	raw := ts.do("GET", "/api/v1/jobs?state=RUNNING", alice.Token, nil, nil)
	raw.decode(t, &running)
	if len(running.Jobs) != 0 || !strings.Contains(string(raw.body), `"jobs":[]`) || !strings.Contains(string(raw.body), `"next_cursor":""`) {
		t.Fatalf("empty list body %s", raw.body)
	}
}

// TestQueueFull: with the queue at its limit a submission gets 429.
func TestQueueFull(t *testing.T) {
	d := newClockDriver("clock", time.Second)
	d.full = true
	opts := testOptions(-1)
	opts.Backends = []*backends.Backend{backends.New(d, nil)}
	opts.Orchestrator = func(c *orchestrator.Config) { fastOrchestrator(c); c.MaxQueued = 2 }
	ts := startServer(t, t.TempDir(), adminEnv, opts)
	keyed := map[string]any{"agent": "alphacal", "dataset_id": "q", "idempotency_key": "x"}
	first, r := ts.submit(testAdminToken, keyed, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("first submission: %d %s", r.status, r.body)
	}
	if _, r := ts.submit(testAdminToken, map[string]any{"agent": "alphacal", "dataset_id": "q"}, nil); r.status != http.StatusCreated {
		t.Fatalf("second submission: %d %s", r.status, r.body)
	}
	_, r = ts.submit(testAdminToken, map[string]any{"agent": "alphacal", "dataset_id": "q"}, nil)
	if r.status != http.StatusTooManyRequests || r.apiErr(t).Code != "resource_exhausted" {
		t.Fatalf("third submission: %d %s, want 429", r.status, r.body)
	}
	// The queued jobs are still there, waiting.
	if j := ts.getJob(testAdminToken, first.ID); j.State != string(orchestrator.StateQueued) {
		t.Fatalf("first job %+v, want QUEUED", j)
	}
}
