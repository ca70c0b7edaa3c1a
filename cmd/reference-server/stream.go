package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Stream timings; the server struct holds the values in use so tests can
// shorten them.
const (
	defaultPingInterval = 25 * time.Second // as Centrifugo's client.ping_interval
	defaultPongTimeout  = 8 * time.Second  // as Centrifugo's client.pong_timeout
	streamWriteTimeout  = 10 * time.Second
)

// streamFilter checks the optional ?job= filter: the job must exist and be
// visible to u, so nobody can wait on another user's job id.
func (s *server) streamFilter(r *http.Request, u *user) (string, error) {
	job := r.URL.Query().Get("job")
	if job == "" {
		return "", nil
	}
	if _, err := s.ownedJob(r.Context(), u, job); err != nil {
		return "", err
	}
	return job, nil
}

// handleWS serves GET /api/v1/ws: a WebSocket that receives the caller's
// job events (an admin's: everyone's) as JSON text messages, one event
// envelope each. The server pings every ping interval and closes the
// connection when no pong arrives within the pong timeout.
func (s *server) handleWS(w http.ResponseWriter, r *http.Request, u *user) {
	job, err := s.streamFilter(r, u)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.hub.register(u, job, "ws")
	if err != nil {
		s.writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: reasonShutdown})
		return
	}
	defer s.hub.unregister(c)
	conn, err := websocket.Accept(w, r, nil)
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
			wctx, wcancel := context.WithTimeout(ctx, streamWriteTimeout)
			err := conn.Write(wctx, websocket.MessageText, m.JSON)
			wcancel()
			if err != nil {
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

// handleSSE serves GET /api/v1/events/stream: the same events as the
// WebSocket, as Server-Sent Events (id = event id, event = event type, data
// = the envelope), with a comment line as heartbeat.
func (s *server) handleSSE(w http.ResponseWriter, r *http.Request, u *user) {
	job, err := s.streamFilter(r, u)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.hub.register(u, job, "sse")
	if err != nil {
		s.writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: reasonShutdown})
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
	if err := write("retry: 2000\n: connected\n\n"); err != nil {
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
			if err := write("id: %s\nevent: %s\ndata: %s\n\n", m.ID, m.Type, m.JSON); err != nil {
				if !errors.Is(err, context.Canceled) {
					s.log.Debug("sse write failed", "user", u.Name, "err", err)
				}
				return
			}
			s.metrics.eventsForwarded.WithLabelValues("sse").Inc()
		}
	}
}
