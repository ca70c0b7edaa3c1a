package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/membus"
)

// startHubServer starts the server through newServer, so the test can
// reach the hub (s.hub.Notify) as the notifications consumer does.
func startHubServer(t *testing.T, env map[string]string, opts serverOptions) (*testServer, *server) {
	t.Helper()
	ts := &testServer{t: t, stdout: &syncBuffer{}, logs: &syncBuffer{}, done: make(chan error, 1)}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	all := map[string]string{envAdminToken: testAdminToken}
	for k, v := range env {
		all[k] = v
	}
	cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-data", t.TempDir()}, func(k string) string { return all[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(context.Background(), cfg, ts.stdout, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.host = s.addr()
	ts.base = "http://" + ts.host
	ts.cancel = func() { ts.done <- s.shutdown(context.Background()) }
	t.Cleanup(ts.stop)
	return ts, s
}

// note returns a job.progress event of job owned by owner, optionally in
// a workflow, with pad bytes of padding in its payload.
func note(t *testing.T, job, owner, workflow string, seq int64, pad int) events.Event {
	t.Helper()
	e, err := events.New(events.JobProgress, job, events.JobData{JobID: job, Owner: owner, Agent: "alphacal", DatasetID: "d",
		State: "RUNNING", Progress: float64(seq % 100), WorkflowID: workflow, Reason: strings.Repeat("x", pad)})
	if err != nil {
		t.Fatal(err)
	}
	e.Sequence = seq
	e.Source = testSource
	return e
}

// testSource marks the events a test sends through Notify, apart from
// the orchestrator's own.
const testSource = "stream-test"

// fromTest passes on only the events sent with note.
func fromTest(in <-chan events.Event) <-chan events.Event {
	out := make(chan events.Event, cap(in))
	go func() {
		defer close(out)
		for e := range in {
			if e.Source == testSource {
				out <- e
			}
		}
	}()
	return out
}

func notifyAll(t *testing.T, s *server, owner string, evs ...events.Event) {
	t.Helper()
	for _, e := range evs {
		if err := s.hub.Notify(context.Background(), owner, e); err != nil {
			t.Fatal(err)
		}
	}
}

// nextNotice waits for the next stream notice.
func nextNotice(t *testing.T, ch <-chan notice) notice {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(waitLimit):
		t.Fatal("no stream notice")
	}
	return notice{}
}

// take reads exactly n events.
func take(t *testing.T, ch <-chan events.Event, n int) []events.Event {
	t.Helper()
	got := make([]events.Event, 0, n)
	for len(got) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("stream closed after %d of %d events", len(got), n)
			}
			got = append(got, e)
		case <-time.After(waitLimit):
			t.Fatalf("stream stalled after %d of %d events", len(got), n)
		}
	}
	return got
}

func sameIDs(t *testing.T, what string, got, want []events.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID {
			t.Fatalf("%s: event %d is %s (seq %d), want %s (seq %d)", what, i, got[i].ID, got[i].Sequence, want[i].ID, want[i].Sequence)
		}
	}
}

// TestStreamIsolation: over WebSocket and SSE, a user can neither
// subscribe to another user's job or workflow nor receive its events; an
// admin receives everything; job and workflow subscriptions narrow the
// stream; every stream needs a token.
func TestStreamIsolation(t *testing.T) {
	ts, s := startHubServer(t, nil, testOptions(time.Hour))
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "user")
	aj, r := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "iso-a"}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}

	// No token, a bad token: refused on both transports.
	for _, tok := range []string{"", "hz_not-a-token"} {
		if _, res, err := ts.dialWS(tok, "", false); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Errorf("ws with token %q: err %v, status %v; want 401", tok, err, res)
		}
		if c, r := ts.dialSSE(tok, ""); c != nil || r.status != http.StatusUnauthorized {
			t.Errorf("sse with token %q: status %d; want 401", tok, r.status)
		}
	}
	// Bob cannot subscribe to alice's job: it is "not found" for him.
	if _, res, err := ts.dialWS(bob.Token, "job="+aj.ID, false); err == nil || res == nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("bob ws on alice's job: err %v; want 404", err)
	}
	if c, r := ts.dialSSE(bob.Token, "?job="+aj.ID); c != nil || r.status != http.StatusNotFound {
		t.Errorf("bob sse on alice's job: %d; want 404", r.status)
	}
	if c, r := ts.dialSSE(bob.Token, "?workflow=wf-of-alice"); c != nil || r.status != http.StatusNotFound || r.apiErr(t).Code != "not_found" {
		t.Errorf("bob sse on an unknown workflow: %d; want 404", r.status)
	}

	bobWS, _, err := ts.dialWS(bob.Token, "", false)
	if err != nil {
		t.Fatal(err)
	}
	bobSSE, r := ts.dialSSE(bob.Token, "")
	if bobSSE == nil {
		t.Fatalf("bob sse: %d %s", r.status, r.body)
	}
	aliceJobWS, _, err := ts.dialWS(alice.Token, "job="+aj.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	adminWF, _, err := ts.dialWS(testAdminToken, "workflow=wf-1", false)
	if err != nil {
		t.Fatal(err)
	}
	adminSSE, r := ts.dialSSE(testAdminToken, "")
	if adminSSE == nil {
		t.Fatalf("admin sse: %d", r.status)
	}
	for _, ch := range []<-chan notice{bobWS.notices, bobSSE.notices, aliceJobWS.notices, adminWF.notices, adminSSE.notices} {
		if n := nextNotice(t, ch); n.Type != noticeConnected || n.Resumed {
			t.Fatalf("first notice %+v", n)
		}
	}

	// Alice's events, one in workflow wf-1, another job of hers, then bob's.
	a1 := note(t, aj.ID, alice.ID, "", 10, 0)
	a2 := note(t, "other-job-of-alice", alice.ID, "wf-1", 1, 0)
	a3 := note(t, aj.ID, alice.ID, "", 11, 0)
	b1 := note(t, "job-of-bob", bob.ID, "", 1, 0)
	notifyAll(t, s, "", a1, a2, a3)
	notifyAll(t, s, bob.ID, b1)

	// Bob's streams: his first and only event is his own.
	if got := take(t, bobWS.events, 1); got[0].ID != b1.ID {
		t.Fatalf("bob's ws got %s of %s, want his own %s", got[0].ID, got[0].Subject, b1.ID)
	}
	if got := take(t, bobSSE.events, 1); got[0].ID != b1.ID {
		t.Fatalf("bob's sse got %s of %s, want his own %s", got[0].ID, got[0].Subject, b1.ID)
	}
	aliceJob, adminAll := fromTest(aliceJobWS.events), fromTest(adminSSE.events)
	sameIDs(t, "alice's job subscription", take(t, aliceJob, 2), []events.Event{a1, a3})
	sameIDs(t, "admin's workflow subscription", take(t, adminWF.events, 1), []events.Event{a2})
	sameIDs(t, "admin's sse", take(t, adminAll, 4), []events.Event{a1, a2, a3, b1})
	// Nothing more arrived on the narrowed or foreign streams: a marker
	// event for everyone comes next.
	marker := note(t, aj.ID, alice.ID, "wf-1", 12, 0)
	notifyAll(t, s, "", marker)
	sameIDs(t, "alice's job subscription after marker", take(t, aliceJob, 1), []events.Event{marker})
	sameIDs(t, "admin's workflow subscription after marker", take(t, adminWF.events, 1), []events.Event{marker})
	b2 := note(t, "job-of-bob", bob.ID, "", 2, 0)
	notifyAll(t, s, "", b2)
	if got := take(t, bobWS.events, 1); got[0].ID != b2.ID {
		t.Fatalf("bob's ws got %s of %s after his first event, want %s", got[0].ID, got[0].Subject, b2.ID)
	}
	if got := take(t, bobSSE.events, 1); got[0].ID != b2.ID {
		t.Fatalf("bob's sse got %s of %s after his first event, want %s", got[0].ID, got[0].Subject, b2.ID)
	}
}

// TestStreamResume: a client that reconnects with its last position gets
// exactly what it missed, in order, over WebSocket (epoch and offset
// parameters) and SSE (Last-Event-ID); a position older than the retained
// window or from another epoch gets a resync notice; one ahead of the
// stream is a 400.
func TestStreamResume(t *testing.T) {
	opts := testOptions(time.Hour)
	opts.StreamWindow = 64
	ts, s := startHubServer(t, nil, opts)
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "user")

	ws, _, err := ts.dialWS(alice.Token, "", false)
	if err != nil {
		t.Fatal(err)
	}
	sse, _ := ts.dialSSE(alice.Token, "")
	nextNotice(t, ws.notices)
	nextNotice(t, sse.notices)
	var all []events.Event
	for i := int64(1); i <= 10; i++ {
		all = append(all, note(t, "job-r", alice.ID, "", i, 0))
	}
	notifyAll(t, s, "", all...)
	sameIDs(t, "ws before the break", take(t, ws.events, 10), all)
	sameIDs(t, "sse before the break", take(t, sse.events, 10), all)
	var sseLast string
	for range 10 {
		sseLast = <-sse.ids
	}
	wsLast := ws.position()
	if sseLast != wsLast.String() {
		t.Fatalf("sse position %s, ws position %s: the same stream should give the same positions", sseLast, wsLast)
	}
	ws.conn.CloseNow()
	sse.body.Close()

	// While they are away: alice's events interleaved with bob's.
	var missed []events.Event
	for i := int64(11); i <= 40; i++ {
		e := note(t, "job-r", alice.ID, "", i, 0)
		missed = append(missed, e)
		notifyAll(t, s, "", e, note(t, "job-b", bob.ID, "", i, 0))
	}
	ws2, _, err := ts.dialWS(alice.Token, fmt.Sprintf("epoch=%s&offset=%d", wsLast.Epoch, wsLast.Offset), false)
	if err != nil {
		t.Fatal(err)
	}
	sse2, r := ts.dialSSEHeader(alice.Token, "", http.Header{"Last-Event-Id": {sseLast}})
	if sse2 == nil {
		t.Fatalf("sse resume: %d %s", r.status, r.body)
	}
	sameIDs(t, "ws replay", take(t, ws2.events, len(missed)), missed)
	sameIDs(t, "sse replay", take(t, sse2.events, len(missed)), missed)
	for _, n := range []notice{nextNotice(t, ws2.notices), nextNotice(t, sse2.notices)} {
		if n.Type != noticeConnected || !n.Resumed || n.Replayed != len(missed) {
			t.Fatalf("resume notice %+v, want connected, resumed, %d replayed", n, len(missed))
		}
	}
	// And live again after the replay, no gap and no duplicate.
	live := note(t, "job-r", alice.ID, "", 41, 0)
	notifyAll(t, s, "", live)
	sameIDs(t, "ws live after replay", take(t, ws2.events, 1), []events.Event{live})
	sameIDs(t, "sse live after replay", take(t, sse2.events, 1), []events.Event{live})

	// The window holds 64 messages; 100 more push the old position out.
	for i := int64(42); i < 142; i++ {
		notifyAll(t, s, "", note(t, "job-b", bob.ID, "", i, 0))
	}
	old, _, err := ts.dialWS(alice.Token, fmt.Sprintf("epoch=%s&offset=%d", wsLast.Epoch, wsLast.Offset), false)
	if err != nil {
		t.Fatal(err)
	}
	if n := nextNotice(t, old.notices); n.Type != noticeResync || n.Resumed || !strings.Contains(n.Reason, "older than the retained window") {
		t.Fatalf("stale position: notice %+v, want resync", n)
	}
	sseOld, _ := ts.dialSSEHeader(alice.Token, "", http.Header{"Last-Event-Id": {"another-epoch:3"}})
	if n := nextNotice(t, sseOld.notices); n.Type != noticeResync || !strings.Contains(n.Reason, "epoch") {
		t.Fatalf("foreign epoch: notice %+v, want resync", n)
	}
	// A resync notice carries a usable position: resuming from it works.
	cur := s.hub.position()
	for _, q := range []string{
		fmt.Sprintf("epoch=%s&offset=%d", cur.Epoch, cur.Offset+5),
		"epoch=" + cur.Epoch,
		"offset=3",
		"epoch=x&offset=-1",
	} {
		r := ts.do("GET", "/api/v1/events/stream?"+q, alice.Token, nil, nil)
		if e := r.apiErr(t); r.status != http.StatusBadRequest || e.Field == "" {
			t.Errorf("resume with %q: %d %+v, want 400 naming a field", q, r.status, e)
		}
	}
}

// TestSlowClientDoesNotBlockOthers: a WebSocket client that stops reading
// is dropped when its buffer is full, while a reading client next to it
// receives every event; the dropped client then resumes with its last
// position and loses nothing.
func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	opts := testOptions(time.Hour)
	opts.ClientBuffer = 4
	opts.StreamWindow = 1024
	opts.PingInterval = time.Hour // the slow client must be dropped as slow, not as silent
	ts, s := startHubServer(t, nil, opts)
	ctx := context.Background()

	slow, _, err := websocket.Dial(ctx, "ws://"+ts.host+"/api/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testAdminToken}}})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	slow.SetReadLimit(1 << 24)
	// Read the hello only: its position is where the slow client stands.
	_, b, err := slow.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hello streamed
	if err := json.Unmarshal(b, &hello); err != nil || hello.Type != noticeConnected {
		t.Fatalf("hello %s: %v", b, err)
	}
	fast, _, err := ts.dialWS(testAdminToken, "", false)
	if err != nil {
		t.Fatal(err)
	}
	nextNotice(t, fast.notices)

	// 64 KiB events: 300 of them are far more than the socket buffers
	// between the server and the client that does not read.
	var sent []events.Event
	for i := int64(1); i <= 300; i++ {
		sent = append(sent, note(t, "job-big", "someone", "", i, 64<<10))
	}
	// One at a time: each event reaches the reading client while the other
	// one's socket and then its buffer fill up.
	for i, e := range sent {
		notifyAll(t, s, "", e)
		sameIDs(t, fmt.Sprintf("fast client, event %d", i), take(t, fast.events, 1), sent[i:i+1])
	}

	// The slow client was dropped (not the fast one), and told why when it
	// finally reads.
	deadline := time.Now().Add(waitLimit)
	for metricValue(t, s.metrics, "horizons_stream_clients_dropped_total", "transport", "ws", "reason", "slow") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("slow client never dropped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var closeErr error
	for closeErr == nil {
		_, _, closeErr = slow.Read(ctx)
	}
	// The close frame says why, unless the server's write timeout cut the
	// connection first (when the test runs slowly, as under -race).
	if websocket.CloseStatus(closeErr) != websocket.StatusTryAgainLater && !errors.Is(closeErr, io.ErrUnexpectedEOF) && !errors.Is(closeErr, io.EOF) {
		t.Fatalf("slow client closed with %v, want try again later (or a cut connection)", closeErr)
	}
	// Resume from the hello position: all 300, in order.
	back, _, err := ts.dialWS(testAdminToken, fmt.Sprintf("epoch=%s&offset=%d", hello.Stream.Epoch, hello.Stream.Offset), false)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "resumed slow client", take(t, back.events, len(sent)), sent)
	if n := nextNotice(t, back.notices); !n.Resumed || n.Replayed != len(sent) {
		t.Fatalf("resume notice %+v", n)
	}
}

// TestStreamOriginAndLimit: a foreign Origin is refused on both transports
// unless allowed; a user's streams are capped, and closing one frees a
// slot.
func TestStreamOriginAndLimit(t *testing.T) {
	ts, s := startHubServer(t, map[string]string{envStreamConns: "2", envOrigins: "https://*.trusted.example"}, testOptions(time.Hour))
	alice := ts.createUser(testAdminToken, "alice", "user")

	evil := http.Header{"Origin": {"https://evil.example"}}
	if _, res, err := ts.dialWSHeader(alice.Token, "", false, evil); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("ws from a foreign origin: err %v; want 403", err)
	}
	if c, r := ts.dialSSEHeader(alice.Token, "", evil); c != nil || r.status != http.StatusForbidden || r.apiErr(t).Field != "Origin" {
		t.Errorf("sse from a foreign origin: %d %s; want 403 naming Origin", r.status, r.body)
	}
	if v := metricValue(t, s.metrics, "horizons_stream_clients_dropped_total", "transport", "ws", "reason", "origin"); v != 1 {
		t.Errorf("origin refusals counted %v, want 1", v)
	}
	own, _, err := ts.dialWSHeader(alice.Token, "", false, http.Header{"Origin": {"http://" + ts.host}})
	if err != nil {
		t.Fatalf("ws from the server's own origin: %v", err)
	}
	trusted, r := ts.dialSSEHeader(alice.Token, "", http.Header{"Origin": {"https://app.trusted.example"}})
	if trusted == nil {
		t.Fatalf("sse from an allowed origin: %d %s", r.status, r.body)
	}
	nextNotice(t, own.notices)
	nextNotice(t, trusted.notices)

	// Alice holds 2 streams: the limit.
	_, res, err := ts.dialWS(alice.Token, "", false)
	if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third ws: err %v; want 429", err)
	}
	if c, r := ts.dialSSE(alice.Token, ""); c != nil || r.status != http.StatusTooManyRequests || !strings.Contains(r.apiErr(t).Message, "limit is 2") {
		t.Fatalf("third stream over sse: %d %s; want 429 naming the limit", r.status, r.body)
	}
	// Another user is not affected.
	if _, _, err := ts.dialWS(testAdminToken, "", false); err != nil {
		t.Fatalf("admin ws while alice is at her limit: %v", err)
	}
	own.conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(waitLimit)
	for {
		c, _, err := ts.dialWS(alice.Token, "", false)
		if err == nil {
			nextNotice(t, c.notices)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after closing a stream: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := parseConfig([]string{"-stream-conns-per-user", "0"}, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "-stream-conns-per-user = 0") {
		t.Errorf("zero connection limit: %v", err)
	}
	if _, err := parseConfig([]string{"-allowed-origins", "a[,b"}, nil, io.Discard); err == nil || !strings.Contains(err.Error(), `"a["`) {
		t.Errorf("bad origin pattern: %v", err)
	}
	if _, err := parseConfig(nil, func(k string) string { return map[string]string{envStreamConns: "lots"}[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), envStreamConns) {
		t.Errorf("bad %s: %v", envStreamConns, err)
	}
}

// TestNotifyRejectsBadEvents: the notifications seam names what is wrong.
func TestNotifyRejectsBadEvents(t *testing.T) {
	bus := membus.NewBus(nil)
	defer bus.Close()
	h := newHub(bus, events.TopicJobs, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(), hubConfig{})
	if err := h.Notify(context.Background(), "u", events.Event{Type: events.JobQueued}); err == nil || !strings.Contains(err.Error(), "id") {
		t.Errorf("event without id: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Notify(ctx, "u", note(t, "j", "u", "", 1, 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if p := h.position(); p.Offset != 0 || len(p.Epoch) != 12 {
		t.Errorf("position after rejected events %+v", p)
	}
	if _, err := parsePosition("Last-Event-ID", "abc:"+strconv.Itoa(-1)); err == nil || !strings.Contains(err.Error(), "Last-Event-ID") {
		t.Errorf("negative offset: %v", err)
	}
}

// TestStreamWorkflowSubscription: the owner of a workflow run follows it
// by run id from the moment it is submitted (its workflow.* events and its
// steps' job events); another user cannot subscribe to it.
func TestStreamWorkflowSubscription(t *testing.T) {
	ts, _ := startHubServer(t, nil, testOptions(30*time.Millisecond))
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "user")
	r := ts.do("POST", "/api/v1/workflows", alice.Token, map[string]any{"name": "two-steps", "steps": []map[string]any{
		{"name": "a", "agent": "alphacal", "dataset_id": "wf-a", "gpus": 1},
		{"name": "b", "agent": "alphacal", "dataset_id": "wf-b", "gpus": 1, "depends_on": []string{"a"}},
	}}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("create workflow: %d %s", r.status, r.body)
	}
	r = ts.do("POST", "/api/v1/workflow-runs", alice.Token, map[string]any{"workflow": "two-steps"}, nil)
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("run: %d %s", r.status, r.body)
	}
	var run struct {
		ID string `json:"id"`
	}
	r.decode(t, &run)
	// From the start of the stream (offset 0), the run's messages only.
	ws, _, err := ts.dialWS(alice.Token, "workflow="+run.ID+"&epoch="+hubEpoch(t, ts, alice.Token)+"&offset=0", false)
	if err != nil {
		t.Fatal(err)
	}
	// Workflow and job events travel on two topics, each through its own
	// consumer, so the run's last job events may reach the stream after
	// workflow.completed: read until both steps' jobs completed too.
	var wfDone bool
	var jobsDone int
	evs := until(t, ws.events, func(e events.Event) bool {
		switch e.Type {
		case events.WorkflowCompleted, events.WorkflowFailed:
			wfDone = true
		case events.JobCompleted:
			jobsDone++
		}
		return e.Type == events.WorkflowFailed || (wfDone && jobsDone == 2)
	})
	var wfEvents, jobEvents int
	for _, e := range evs {
		switch {
		case strings.HasPrefix(string(e.Type), "workflow."):
			if e.Subject != run.ID {
				t.Errorf("workflow event of another run: %s %s", e.Type, e.Subject)
			}
			wfEvents++
		case strings.HasPrefix(string(e.Type), "job."):
			var d events.JobData
			if err := e.Decode(&d); err != nil || d.WorkflowID != run.ID {
				t.Errorf("job event %s not of the run: workflow %q", e.Type, d.WorkflowID)
			}
			jobEvents++
		}
	}
	if !wfDone || jobsDone != 2 || wfEvents < 4 || jobEvents < 8 { // job.progress events depend on timing
		t.Fatalf("run stream: %d workflow and %d job events: %v", wfEvents, jobEvents, types(evs))
	}
	if c, r := ts.dialSSE(bob.Token, "?workflow="+run.ID); c != nil || r.status != http.StatusNotFound {
		t.Errorf("bob subscribing to alice's run: %d, want 404", r.status)
	}
}

// hubEpoch reads the stream's epoch from a fresh connection's notice.
func hubEpoch(t *testing.T, ts *testServer, tok string) string {
	t.Helper()
	c, _, err := ts.dialWS(tok, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.CloseNow()
	return nextNotice(t, c.notices).Stream.Epoch
}
