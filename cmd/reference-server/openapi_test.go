package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// apiChecker sends requests to the real server and validates each request
// and response against the served OpenAPI document.
type apiChecker struct {
	t      *testing.T
	ts     *testServer
	doc    *openapi3.T
	router routers.Router
	seen   map[string]bool // "METHOD path-template" exercised
}

func newAPIChecker(t *testing.T, ts *testServer) *apiChecker {
	t.Helper()
	// The document the server serves, not the file on disk.
	r := ts.do("GET", "/openapi.json", "", nil, nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", r.status, r.header.Get("Content-Type"))
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(r.body)
	if err != nil {
		t.Fatalf("load /openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("/openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: ts.base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	if openapi3filter.RegisteredBodyDecoder("text/event-stream") == nil {
		openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	}
	if openapi3filter.RegisteredBodyDecoder("image/png") == nil {
		openapi3filter.RegisterBodyDecoder("image/png", openapi3filter.FileBodyDecoder)
	}
	return &apiChecker{t: t, ts: ts, doc: doc, router: router, seen: map[string]bool{}}
}

// call sends the request, validates both directions and returns the
// response. wantStatus guards against a test that silently exercises the
// wrong branch.
func (c *apiChecker) call(method, path, token string, body any, hdr map[string]string, wantStatus int) resp {
	c.t.Helper()
	var raw []byte
	if body != nil {
		switch b := body.(type) {
		case string:
			raw = []byte(b)
		case []byte:
			raw = b
		default:
			var err error
			if raw, err = json.Marshal(b); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	req, _ := http.NewRequest(method, c.ts.base+path, bytes.NewReader(raw))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.t.Fatalf("%s %s is not in /openapi.json: %v", method, path, err)
	}
	c.seen[method+" "+route.Path] = true
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	// Only requests meant to be valid are checked against the document;
	// the bad ones are there to get documented error responses.
	if wantStatus < 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("%s %s: request does not match the document: %v", method, path, err)
		}
	}
	send := req.Clone(context.Background())
	send.Body = io.NopCloser(bytes.NewReader(raw))
	res, err := http.DefaultClient.Do(send)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var b []byte
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		// A stream does not end: validate its first message.
		line, _ := bufio.NewReader(res.Body).ReadString('\n')
		b = []byte(line)
	} else if b, err = io.ReadAll(res.Body); err != nil {
		c.t.Fatal(err)
	}
	if res.StatusCode != wantStatus {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, wantStatus, b)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(b)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s %s -> %d: response does not match the document: %v\nbody: %s", method, path, res.StatusCode, err, b)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// schema validates v against a named component schema.
func (c *apiChecker) schema(name string, v []byte) {
	c.t.Helper()
	s := c.doc.Components.Schemas[name]
	if s == nil {
		c.t.Fatalf("no schema %s", name)
	}
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		c.t.Fatal(err)
	}
	if err := s.Value.VisitJSON(x); err != nil {
		c.t.Errorf("%s does not match schema %s: %v", v, name, err)
	}
}

// TestOpenAPI drives every operation of /openapi.json against the real
// server, validating each request and response with kin-openapi, and
// fails when the document lists an operation the test did not reach.
func TestOpenAPI(t *testing.T) {
	ts := startServer(t, t.TempDir(), adminEnv, testOptions(100*time.Millisecond))
	c := newAPIChecker(t, ts)
	admin := testAdminToken

	c.call("GET", "/healthz", "", nil, nil, 200)
	c.call("GET", "/readyz", "", nil, nil, 200)
	c.call("GET", "/metrics", "", nil, nil, 200)
	c.call("GET", "/openapi.json", "", nil, nil, 200)
	c.call("GET", "/api/v1/dashboard/config", "", nil, nil, 200)
	c.call("GET", "/api/v1/cluster/usage", admin, nil, nil, 200) // the clock backend reports an error
	c.call("GET", "/api/v1/cluster/usage", "", nil, nil, 401)

	var alice userResponse
	json.Unmarshal(c.call("POST", "/api/v1/users", admin, map[string]any{"name": "alice"}, nil, 201).body, &alice)
	c.call("POST", "/api/v1/users", admin, map[string]any{"name": "alice"}, nil, 409)
	c.call("POST", "/api/v1/users", admin, map[string]any{"name": "-bad"}, nil, 400)
	c.call("POST", "/api/v1/users", alice.Token, map[string]any{"name": "eve"}, nil, 403)
	c.call("POST", "/api/v1/users", "", map[string]any{"name": "eve"}, nil, 401)
	c.call("POST", "/api/v1/users", admin, strings.Repeat(" ", maxBodyBytes+1), nil, 413)

	sub := map[string]any{"agent": "alphacal", "dataset_id": "VLASS2.1", "gpus": 1, "params": map[string]any{}, "priority": 1, "idempotency_key": "oa-1"}
	var job jobJSON
	json.Unmarshal(c.call("POST", "/api/v1/jobs", alice.Token, sub, map[string]string{"X-Correlation-ID": "oa-corr"}, 201).body, &job)
	c.call("POST", "/api/v1/jobs", alice.Token, sub, nil, 200)
	c.call("POST", "/api/v1/jobs", alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "x", "colour": 1}, nil, 400)
	c.call("GET", "/api/v1/jobs?state=COMPLETED,RUNNING&limit=10", alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/jobs?limit=0", alice.Token, nil, nil, 400)
	c.call("GET", "/api/v1/jobs/"+job.ID, alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/jobs/"+job.ID, admin, nil, nil, 200)
	c.call("GET", "/api/v1/jobs/no-such-job", alice.Token, nil, nil, 404)
	ts.waitJob(alice.Token, job.ID, func(j jobJSON) bool { return j.State == "COMPLETED" })
	c.call("GET", "/api/v1/jobs/"+job.ID, alice.Token, nil, nil, 200) // all times set
	c.call("GET", "/api/v1/jobs/"+job.ID+"/events", alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/jobs/no-such-job/events", alice.Token, nil, nil, 404)
	c.call("GET", "/api/v1/jobs/"+job.ID+"/provenance", alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/jobs/no-such-job/provenance", alice.Token, nil, nil, 404)
	c.call("POST", "/api/v1/jobs/"+job.ID+"/cancel", alice.Token, map[string]any{"reason": "late"}, nil, 409)
	long := map[string]any{"agent": "alphacal", "dataset_id": "VLASS2.1", "gpus": 1}
	var other jobJSON
	json.Unmarshal(c.call("POST", "/api/v1/jobs", admin, long, nil, 201).body, &other)
	c.call("POST", "/api/v1/jobs/"+other.ID+"/cancel", alice.Token, nil, nil, 404)
	if r := c.call("POST", "/api/v1/jobs/"+other.ID+"/cancel", admin, map[string]any{"reason": strings.Repeat("r", 300)}, nil, 400); r.apiErr(t).Field != "reason" {
		t.Errorf("long reason: field %q", r.apiErr(t).Field)
	}

	workflowOpenAPICalls(t, c, alice, admin)
	analyticsOpenAPICalls(t, c, alice, admin) // analytics_test.go

	// Sky view: annotations and snapshots of alice's job.
	var note annotation
	json.Unmarshal(c.call("POST", "/api/v1/jobs/"+job.ID+"/annotations", admin, map[string]any{"ra_deg": 150.1, "dec_deg": 2.2, "text": "check this", "detection": "src-1"}, nil, 201).body, &note)
	c.call("POST", "/api/v1/jobs/"+job.ID+"/annotations", alice.Token, map[string]any{"ra_deg": 360, "dec_deg": 2.2, "text": "x"}, nil, 400)
	c.call("POST", "/api/v1/jobs/no-such-job/annotations", alice.Token, map[string]any{"ra_deg": 1, "dec_deg": 2, "text": "x"}, nil, 404)
	c.call("GET", "/api/v1/jobs/"+job.ID+"/annotations", alice.Token, nil, nil, 200)
	c.call("DELETE", "/api/v1/annotations/"+note.ID, alice.Token, nil, nil, 403)
	c.call("DELETE", "/api/v1/annotations/"+note.ID, admin, nil, nil, 204)
	c.call("DELETE", "/api/v1/annotations/"+note.ID, admin, nil, nil, 404)
	pngHdr := map[string]string{"Content-Type": "image/png"}
	var snap snapshot
	json.Unmarshal(c.call("POST", "/api/v1/jobs/"+job.ID+"/snapshots", alice.Token, testPNG(t, 40, 20), pngHdr, 201).body, &snap)
	c.call("POST", "/api/v1/jobs/"+job.ID+"/snapshots", alice.Token, []byte("GIF89a not a png"), pngHdr, 400)
	c.call("POST", "/api/v1/jobs/"+job.ID+"/snapshots", alice.Token, testPNG(t, 4, 4), map[string]string{"Content-Type": "image/gif"}, 415)
	c.call("POST", "/api/v1/jobs/"+job.ID+"/snapshots", alice.Token, make([]byte, maxSnapshotBytes+1), pngHdr, 413)
	c.call("POST", "/api/v1/jobs/no-such-job/snapshots", alice.Token, testPNG(t, 4, 4), pngHdr, 404)
	c.call("GET", "/api/v1/jobs/"+job.ID+"/snapshots", alice.Token, nil, nil, 200)
	c.call("GET", snap.URL, alice.Token, nil, nil, 200)
	c.call("GET", "/api/v1/snapshots/nope", alice.Token, nil, nil, 404)

	// Streams: the documented refusals, and the first message of an SSE
	// stream, whose data is a StreamNotice.
	c.call("GET", "/api/v1/ws", "", nil, nil, 401)
	c.call("GET", "/api/v1/events/stream?job=no-such-job", alice.Token, nil, nil, 404)
	c.call("GET", "/api/v1/events/stream?offset=3", alice.Token, nil, nil, 400)
	c.call("GET", "/api/v1/events/stream", alice.Token, nil, nil, 200)
	sse, _ := ts.dialSSE(alice.Token, "")
	ws, _, err := ts.dialWS(alice.Token, "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan notice{sse.notices, ws.notices} {
		n := nextNotice(t, ch)
		b, _ := json.Marshal(n)
		c.schema("StreamNotice", b)
	}
	// A streamed event matches StreamEvent.
	_, rawWS, err := ts.dialWSRaw(admin)
	if err != nil {
		t.Fatal(err)
	}
	ts.submit(admin, map[string]any{"agent": "alphacal", "dataset_id": "oa-ws"}, nil)
	for i := 0; i < 2; i++ { // the notice, then the first event
		var b []byte
		select {
		case b = <-rawWS:
		case <-time.After(waitLimit):
			t.Fatal("no message on the WebSocket")
		}
		if i == 0 {
			c.schema("StreamNotice", b)
		} else {
			c.schema("StreamEvent", b)
		}
	}

	// Admin endpoints of the event system.
	c.call("GET", "/api/v1/admin/dead-letters?limit=5", admin, nil, nil, 200)
	c.call("GET", "/api/v1/admin/dead-letters?limit=0", admin, nil, nil, 400)
	c.call("GET", "/api/v1/admin/dead-letters", alice.Token, nil, nil, 403)
	c.call("GET", "/api/v1/admin/dead-letters/nope", admin, nil, nil, 404)
	c.call("POST", "/api/v1/admin/dead-letters/nope/replay", admin, nil, nil, 404)
	c.call("GET", "/api/v1/admin/audit?limit=3", admin, nil, nil, 200)
	c.call("POST", "/api/v1/admin/audit/verify", admin, nil, nil, 200)
	c.call("POST", "/api/v1/admin/replay", admin, map[string]any{"job_id": job.ID, "consumer": consumerNotifications}, nil, 200)
	c.call("POST", "/api/v1/admin/replay", admin, map[string]any{"job_id": job.ID, "consumer": "nobody"}, nil, 400)
	c.call("GET", "/api/v1/admin/events/health", admin, nil, nil, 200)

	// Ephemeris (public).
	for _, p := range []string{"julian?time=2000-01-01T12:00:00Z", "sidereal?time=2000-01-01T12:00:00Z&site=vla",
		"position?body=sun&time=2024-06-01T00:00:00Z&site=vla", "riseset?body=3C286&date=2024-06-01&site=vla",
		"convert?ra=10&dec=0&to=galactic", "moon?time=2024-06-01T00:00:00Z",
		"phases?from=2024-06-01T00:00:00Z&to=2024-07-01T00:00:00Z",
		"observability?ra=10&dec=20&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&site=vla",
		"resolve?target=3C138"} {
		c.call("GET", "/api/v1/ephemeris/"+p, "", nil, nil, 200)
	}
	c.call("GET", "/api/v1/ephemeris/position?body=pluto&time=2024-06-01T00:00:00Z", "", nil, nil, 400)

	var missing []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			if !c.seen[method+" "+path] {
				missing = append(missing, method+" "+path)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("operations in /openapi.json the test never exercised: %v", missing)
	}
}

// dialWSRaw opens a WebSocket and returns its raw messages.
func (ts *testServer) dialWSRaw(tok string) (*websocket.Conn, <-chan []byte, error) {
	conn, _, err := websocket.Dial(context.Background(), "ws://"+ts.host+"/api/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		return nil, nil, err
	}
	conn.SetReadLimit(1 << 20)
	ts.t.Cleanup(func() { conn.CloseNow() })
	raw := make(chan []byte, 64)
	go func() {
		defer close(raw)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			raw <- b
		}
	}()
	return conn, raw, nil
}
