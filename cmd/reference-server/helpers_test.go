package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

const testAdminToken = "test-admin-token-0123456789abcdef"

// waitLimit is a failsafe against hangs, never a timing assertion.
const waitLimit = 30 * time.Second

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	t      *testing.T
	base   string
	host   string
	stdout *syncBuffer
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

var listenRe = regexp.MustCompile(`listening on http://(\S+) `)

// fastOrchestrator makes the orchestrator poll often so tests finish fast.
func fastOrchestrator(c *orchestrator.Config) {
	c.PollInterval = 15 * time.Millisecond
	c.ScheduleInterval = 15 * time.Millisecond
	c.OutboxInterval = 15 * time.Millisecond
	c.Retry.InitialBackoff = 10 * time.Millisecond
	c.Retry.MaxBackoff = 50 * time.Millisecond
}

// testOptions returns options with a clock backend of the given task
// duration (or none, to use the production simgpu wiring, when dur < 0).
func testOptions(dur time.Duration) serverOptions {
	o := serverOptions{Orchestrator: fastOrchestrator, PingInterval: 200 * time.Millisecond, PongTimeout: 2 * time.Second}
	if dur >= 0 {
		o.Backends = []*backends.Backend{backends.New(newClockDriver("clock", dur), nil)}
	}
	return o
}

// startServer starts the whole server through parseConfig and runConfig on
// 127.0.0.1:0 and waits for its "listening" line.
func startServer(t *testing.T, dataDir string, env map[string]string, opts serverOptions) *testServer {
	t.Helper()
	ts := &testServer{t: t, stdout: &syncBuffer{}, logs: &syncBuffer{}, done: make(chan error, 1)}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-data", dataDir}, getenv, ts.stdout)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.done <- runConfig(ctx, cfg, ts.stdout, opts) }()
	deadline := time.Now().Add(waitLimit)
	for {
		if m := listenRe.FindStringSubmatch(ts.stdout.String()); m != nil {
			ts.host = m[1]
			ts.base = "http://" + m[1]
			break
		}
		select {
		case err := <-ts.done:
			cancel()
			t.Fatalf("server exited during start-up: %v\nlogs:\n%s", err, ts.logs.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not start; stdout:\n%s", ts.stdout.String())
		}
	}
	t.Cleanup(func() { ts.stop() })
	return ts
}

// stop shuts the server down gracefully and checks that run returned nil.
func (ts *testServer) stop() {
	ts.once.Do(func() {
		ts.cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				ts.t.Errorf("run returned %v", err)
			}
		case <-time.After(waitLimit):
			ts.t.Errorf("server did not shut down")
		}
	})
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// apiErr decodes an error body and checks its shape.
func (r resp) apiErr(t *testing.T) errorDetail {
	t.Helper()
	var raw map[string]map[string]any
	r.decode(t, &raw)
	e, ok := raw["error"]
	if !ok {
		t.Fatalf("no error object in %s", r.body)
	}
	for _, k := range []string{"code", "message", "field"} {
		if _, ok := e[k]; !ok {
			t.Fatalf("error object lacks %q: %s", k, r.body)
		}
	}
	var b errorBody
	r.decode(t, &b)
	return b.Error
}

func (ts *testServer) do(method, path, token string, body any, hdr map[string]string) resp {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (ts *testServer) createUser(adminTok, name, role string) userResponse {
	ts.t.Helper()
	r := ts.do("POST", "/api/v1/users", adminTok, map[string]string{"name": name, "role": role}, nil)
	if r.status != http.StatusCreated {
		ts.t.Fatalf("create user %s: %d %s", name, r.status, r.body)
	}
	var u userResponse
	r.decode(ts.t, &u)
	return u
}

func (ts *testServer) submit(tok string, body map[string]any, hdr map[string]string) (jobJSON, resp) {
	ts.t.Helper()
	r := ts.do("POST", "/api/v1/jobs", tok, body, hdr)
	var j jobJSON
	if r.status == http.StatusCreated || r.status == http.StatusOK {
		r.decode(ts.t, &j)
	}
	return j, r
}

func (ts *testServer) getJob(tok, id string) jobJSON {
	ts.t.Helper()
	r := ts.do("GET", "/api/v1/jobs/"+id, tok, nil, nil)
	if r.status != http.StatusOK {
		ts.t.Fatalf("get job %s: %d %s", id, r.status, r.body)
	}
	var j jobJSON
	r.decode(ts.t, &j)
	return j
}

// waitJob polls the job until cond holds.
func (ts *testServer) waitJob(tok, id string, cond func(jobJSON) bool) jobJSON {
	ts.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		j := ts.getJob(tok, id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("job %s never reached the expected condition; last %+v", id, j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (ts *testServer) jobEvents(tok, id string) []events.Event {
	ts.t.Helper()
	r := ts.do("GET", "/api/v1/jobs/"+id+"/events", tok, nil, nil)
	if r.status != http.StatusOK {
		ts.t.Fatalf("events of %s: %d %s", id, r.status, r.body)
	}
	var l eventList
	r.decode(ts.t, &l)
	return l.Events
}

// wsClient collects the events a WebSocket receives; stream notices
// (stream.connected, stream.resync) go to notices, and every message's
// position is checked to increase.
type wsClient struct {
	conn    *websocket.Conn
	events  chan events.Event
	notices chan notice
	closed  chan error

	mu   sync.Mutex
	last position // position of the newest message read
}

// streamed is a stream message: an event envelope or a notice, with its
// position.
type streamed struct {
	events.Event
	Stream   position `json:"stream"`
	Resumed  bool     `json:"resumed"`
	Replayed int      `json:"replayed"`
	Reason   string   `json:"reason"`
}

// position returns the position of the newest message read.
func (c *wsClient) position() position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (ts *testServer) dialWS(tok, query string, useQueryToken bool) (*wsClient, *http.Response, error) {
	ts.t.Helper()
	return ts.dialWSHeader(tok, query, useQueryToken, nil)
}

func (ts *testServer) dialWSHeader(tok, query string, useQueryToken bool, hdr http.Header) (*wsClient, *http.Response, error) {
	ts.t.Helper()
	u := "ws://" + ts.host + "/api/v1/ws"
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	for k, v := range hdr {
		opts.HTTPHeader[k] = v
	}
	q := query
	if useQueryToken {
		if q != "" {
			q += "&"
		}
		q += "token=" + tok
	} else if tok != "" {
		opts.HTTPHeader.Set("Authorization", "Bearer "+tok)
	}
	if q != "" {
		u += "?" + q
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		return nil, res, err
	}
	conn.SetReadLimit(1 << 24)
	c := &wsClient{conn: conn, events: make(chan events.Event, 4096), notices: make(chan notice, 16), closed: make(chan error, 1)}
	go func() {
		defer close(c.events)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				c.closed <- err
				return
			}
			var m streamed
			if err := json.Unmarshal(b, &m); err != nil {
				c.closed <- err
				return
			}
			c.mu.Lock()
			if m.Stream.Epoch == "" || (m.Stream.Epoch == c.last.Epoch && m.Stream.Offset < c.last.Offset) {
				c.mu.Unlock()
				c.closed <- fmt.Errorf("message %s has position %v after %v", m.Type, m.Stream, c.last)
				return
			}
			c.last = m.Stream
			c.mu.Unlock()
			if strings.HasPrefix(string(m.Type), "stream.") {
				c.notices <- notice{Type: string(m.Type), Stream: m.Stream, Resumed: m.Resumed, Replayed: m.Replayed, Reason: m.Reason}
				continue
			}
			c.events <- m.Event
		}
	}()
	ts.t.Cleanup(func() { conn.CloseNow() })
	return c, res, nil
}

// until reads events until one satisfies stop (included), failing on a
// closed stream.
func until(t *testing.T, ch <-chan events.Event, stop func(events.Event) bool) []events.Event {
	t.Helper()
	var got []events.Event
	timeout := time.After(waitLimit)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("stream closed after %d events: %v", len(got), types(got))
			}
			got = append(got, e)
			if stop(e) {
				return got
			}
		case <-timeout:
			t.Fatalf("stream stalled after %d events: %v", len(got), types(got))
		}
	}
}

func types(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Type)
	}
	return out
}

func terminalEvent(id string) func(events.Event) bool {
	return func(e events.Event) bool {
		return e.Subject == id && (e.Type == events.JobCompleted || e.Type == events.JobCancelled)
	}
}

// sseClient collects Server-Sent Events.
type sseClient struct {
	events chan events.Event
	names  chan string // the "event:" field of each event, in order
	// notices are the stream.* messages; ids the "id:" of each event.
	notices chan notice
	ids     chan string
	body    io.Closer
}

func (ts *testServer) dialSSE(tok, query string) (*sseClient, resp) {
	ts.t.Helper()
	return ts.dialSSEHeader(tok, query, nil)
}

func (ts *testServer) dialSSEHeader(tok, query string, hdr http.Header) (*sseClient, resp) {
	ts.t.Helper()
	req, _ := http.NewRequest("GET", ts.base+"/api/v1/events/stream"+query, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return nil, resp{status: res.StatusCode, header: res.Header, body: b}
	}
	c := &sseClient{events: make(chan events.Event, 4096), names: make(chan string, 4096), notices: make(chan notice, 16), ids: make(chan string, 4096), body: res.Body}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var name, id string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if len(data) > 0 && name != "close" {
					// The id is the message's stream position, which the
					// data carries too.
					var m streamed
					if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &m); err == nil && m.Stream.String() == id && string(m.Type) == name {
						if strings.HasPrefix(name, "stream.") {
							c.notices <- notice{Type: name, Stream: m.Stream, Resumed: m.Resumed, Replayed: m.Replayed, Reason: m.Reason}
						} else {
							c.names <- name
							c.ids <- id
							c.events <- m.Event
						}
					}
				}
				name, id, data = "", "", nil
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	ts.t.Cleanup(func() { res.Body.Close() })
	return c, resp{status: res.StatusCode, header: res.Header}
}
