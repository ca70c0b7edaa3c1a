package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/cosmic-horizons/horizons/orchestrator"
)

// Stream timings; the server struct holds the values in use so tests can
// shorten them.
const (
	defaultPingInterval = 25 * time.Second // as Centrifugo's client.ping_interval
	defaultPongTimeout  = 8 * time.Second  // as Centrifugo's client.pong_timeout
	streamWriteTimeout  = 10 * time.Second
)

// maxStreamFilters bounds the job= and workflow= values of one stream.
const maxStreamFilters = 100

// streamRequest reads what a stream request asks for: the subscription
// (?job= and ?workflow=, each repeatable; every job and workflow must be
// visible to u, so nobody can wait on another user's ids) and the position
// to resume after (?epoch=&offset=, or for SSE the Last-Event-ID header
// "epoch:offset" that EventSource sends by itself).
func (s *server) streamRequest(r *http.Request, u *user) (subscription, *position, error) {
	var sub subscription
	q := r.URL.Query()
	if n := len(q["job"]) + len(q["workflow"]); n > maxStreamFilters {
		return sub, nil, badRequest("job", "%d job and workflow filters; at most %d", n, maxStreamFilters)
	}
	for _, id := range q["job"] {
		if id == "" {
			return sub, nil, badRequest("job", "job filter is empty")
		}
		if _, err := s.ownedJob(r.Context(), u, id); err != nil {
			return sub, nil, err
		}
		if sub.Jobs == nil {
			sub.Jobs = map[string]bool{}
		}
		sub.Jobs[id] = true
	}
	for _, id := range q["workflow"] {
		if id == "" {
			return sub, nil, badRequest("workflow", "workflow filter is empty")
		}
		if err := s.visibleWorkflow(r.Context(), u, id); err != nil {
			return sub, nil, err
		}
		if sub.Workflows == nil {
			sub.Workflows = map[string]bool{}
		}
		sub.Workflows[id] = true
	}
	epoch, offset := q.Get("epoch"), q.Get("offset")
	switch {
	case epoch != "" || offset != "":
		if epoch == "" {
			return sub, nil, badRequest("epoch", "offset %q given without epoch", offset)
		}
		if offset == "" {
			return sub, nil, badRequest("offset", "epoch %q given without offset", epoch)
		}
		p, err := parsePosition("offset", epoch+":"+offset)
		return sub, &p, err
	case r.Header.Get("Last-Event-ID") != "":
		p, err := parsePosition("Last-Event-ID", r.Header.Get("Last-Event-ID"))
		return sub, &p, err
	}
	return sub, nil, nil
}

// visibleWorkflow checks that u may follow workflow id (a workflow run
// id): an admin always; a user when the run, or one of its jobs, is theirs.
func (s *server) visibleWorkflow(ctx context.Context, u *user, id string) error {
	if u.isAdmin() {
		return nil
	}
	if s.wf != nil && s.wf.eng != nil {
		if _, err := s.ownedRun(ctx, u, id); err == nil {
			return nil
		}
	}
	page, err := s.orch.List(ctx, orchestrator.ListQuery{Owner: u.ID, WorkflowID: id, Limit: 1})
	if err != nil {
		return err
	}
	if len(page.Jobs) == 0 {
		return notFound("workflow", id)
	}
	return nil
}

// checkOrigin refuses a browser request from a foreign page: an Origin
// header, when present, must name the request's own host or match one of
// the configured patterns (path.Match, against the host or, for patterns
// with "://", against scheme://host — the rules of coder/websocket).
func (s *server) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return &apiError{Status: http.StatusForbidden, Code: "permission_denied", Field: "Origin", Message: fmt.Sprintf("Origin %q is not a URL", origin)}
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, p := range s.originPatterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return &apiError{Status: http.StatusForbidden, Code: "permission_denied", Field: "Origin",
		Message: fmt.Sprintf("Origin %q may not open streams on %q; allow it with -allowed-origins", origin, r.Host)}
}

// openStream runs the checks every transport shares and registers the
// client; on error it has written the response.
func (s *server) openStream(w http.ResponseWriter, r *http.Request, u *user, transport string) *client {
	if err := s.checkOrigin(r); err != nil {
		s.metrics.clientsDropped.WithLabelValues(transport, "origin").Inc()
		s.writeError(w, r, err)
		return nil
	}
	sub, from, err := s.streamRequest(r, u)
	if err != nil {
		s.writeError(w, r, err)
		return nil
	}
	c, err := s.hub.register(u, sub, transport, from)
	switch {
	case errors.Is(err, errHubClosed):
		s.writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: reasonShutdown})
		return nil
	case errors.Is(err, errTooManyStreams):
		s.writeError(w, r, &apiError{Status: http.StatusTooManyRequests, Code: "resource_exhausted", Message: err.Error()})
		return nil
	case err != nil:
		s.writeError(w, r, err)
		return nil
	}
	return c
}

func noticeJSON(n notice) []byte {
	b, _ := json.Marshal(n)
	return b
}

// handleWS serves GET /api/v1/ws: a WebSocket that receives the caller's
// job events (an admin's: everyone's) as JSON text messages, one event
// envelope each with its stream position in "stream":{"epoch","offset"}.
// The first message is a stream.connected notice (or stream.resync, see
// hub.register). The server pings every ping interval and closes the
// connection when no pong arrives within the pong timeout.
func (s *server) handleWS(w http.ResponseWriter, r *http.Request, u *user) {
	c := s.openStream(w, r, u, "ws")
	if c == nil {
		return
	}
	defer s.hub.unregister(c)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.originPatterns, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		// Accept has written the error response.
		s.log.Debug("websocket accept failed", "err", err)
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4096)
	// The client sends nothing we need; CloseRead reads (and answers
	// control frames) and cancels ctx when the client goes away.
	ctx := conn.CloseRead(r.Context())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(s.pingInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(ctx, s.pongTimeout)
				err := conn.Ping(pctx)
				pcancel()
				if err != nil {
					if ctx.Err() == nil {
						s.log.Debug("websocket heartbeat failed; closing", "user", u.Name, "err", err)
						s.metrics.clientsDropped.WithLabelValues("ws", "heartbeat").Inc()
					}
					cancel()
					return
				}
			}
		}
	}()
	write := func(b []byte) error {
		wctx, wcancel := context.WithTimeout(ctx, streamWriteTimeout)
		defer wcancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	for _, m := range c.replay {
		if err := write(m.JSON); err != nil {
			return
		}
		s.metrics.eventsForwarded.WithLabelValues("ws").Inc()
	}
	c.replay = nil
	if err := write(noticeJSON(c.hello)); err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.gone:
			code := websocket.StatusTryAgainLater
			if c.reason == reasonShutdown {
				code = websocket.StatusGoingAway
			}
			_ = conn.Close(code, truncateReason(c.reason))
			return
		case m := <-c.ch:
			if err := write(m.JSON); err != nil {
				return
			}
			s.metrics.eventsForwarded.WithLabelValues("ws").Inc()
		}
	}
}

// truncateReason fits a close reason into the 123 bytes a close frame
// allows.
func truncateReason(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

// handleSSE serves GET /api/v1/events/stream: the same messages as the
// WebSocket, as Server-Sent Events: id = the stream position
// "epoch:offset" (so EventSource resumes by itself with Last-Event-ID),
// event = the event type (or "stream.connected" / "stream.resync"), data =
// the same JSON as over the WebSocket; a comment line is the heartbeat.
func (s *server) handleSSE(w http.ResponseWriter, r *http.Request, u *user) {
	c := s.openStream(w, r, u, "sse")
	if c == nil {
		return
	}
	defer s.hub.unregister(c)
	rc := http.NewResponseController(w)
	// Per-write deadlines below; clear the last one so a kept-alive
	// connection is not cut short on its next request.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(format string, args ...any) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	send := func(m *streamMsg) error {
		p := position{Epoch: s.hub.epoch, Offset: m.Offset}
		if err := write("id: %s\nevent: %s\ndata: %s\n\n", p, m.Type, m.JSON); err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Debug("sse write failed", "user", u.Name, "err", err)
			}
			return err
		}
		s.metrics.eventsForwarded.WithLabelValues("sse").Inc()
		return nil
	}
	if err := write("retry: 2000\n: connected\n\n"); err != nil {
		return
	}
	for _, m := range c.replay {
		if send(m) != nil {
			return
		}
	}
	c.replay = nil
	if err := write("id: %s\nevent: %s\ndata: %s\n\n", c.hello.Stream, c.hello.Type, noticeJSON(c.hello)); err != nil {
		return
	}
	t := time.NewTicker(s.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			_ = write("event: close\ndata: %q\n\n", c.reason)
			return
		case <-t.C:
			if err := write(": ping %s\n\n", time.Now().UTC().Format(time.RFC3339)); err != nil {
				return
			}
		case m := <-c.ch:
			if send(m) != nil {
				return
			}
		}
	}
}
