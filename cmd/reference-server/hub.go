package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"

	"github.com/cosmic-horizons/horizons/events"
)

// defaultClientBuffer is how many events a stream client may fall behind
// before the hub drops it.
const defaultClientBuffer = 256

// Reasons a client leaves the hub, sent to the client where the transport
// allows it.
const (
	reasonSlow     = "client too slow: more than its buffer of events behind; reconnect and re-read history with GET /api/v1/jobs/{id}/events"
	reasonShutdown = "server shutting down"
)

// streamMsg is one event, encoded once for every client.
type streamMsg struct {
	ID      string
	Type    string
	Subject string
	JSON    []byte
}

// client is one WebSocket or SSE connection.
type client struct {
	user      *user
	job       string // only this job's events when non-empty
	transport string // "ws" or "sse"
	ch        chan streamMsg

	gone   chan struct{} // closed when the hub drops the client
	once   sync.Once
	reason string // why it was dropped; read after gone is closed
}

func (c *client) drop(reason string) {
	c.once.Do(func() {
		c.reason = reason
		close(c.gone)
	})
}

func (c *client) wants(owner, subject string) bool {
	if c.job != "" && c.job != subject {
		return false
	}
	return c.user.isAdmin() || c.user.ID == owner
}

// hub subscribes once to the job topic and fans every event out to the
// stream clients allowed to see it. It never blocks on a client: each has a
// bounded buffer, and a client whose buffer is full is dropped, so one slow
// reader cannot delay the others or the bus. Deliveries are acknowledged as
// soon as they arrive; redeliveries are recognised by event id and skipped.
type hub struct {
	bus     *events.Bus
	topic   string
	log     *slog.Logger
	metrics *metrics
	buf     int
	dedup   *events.Deduplicator

	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool

	cancel context.CancelFunc
	done   chan struct{}
}

func newHub(bus *events.Bus, topic string, log *slog.Logger, m *metrics, buffer int) *hub {
	if buffer <= 0 {
		buffer = defaultClientBuffer
	}
	return &hub{
		bus: bus, topic: topic, log: log.With("component", "hub"), metrics: m, buf: buffer,
		dedup:   events.NewDeduplicator(0),
		clients: map[*client]struct{}{},
		done:    make(chan struct{}),
	}
}

// start subscribes to the topic. It returns once the subscription exists,
// so events published afterwards reach the hub.
func (h *hub) start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	deliveries, err := h.bus.Subscribe(ctx, h.topic)
	if err != nil {
		cancel()
		return err
	}
	h.cancel = cancel
	go h.loop(deliveries)
	return nil
}

func (h *hub) loop(deliveries <-chan events.Delivery) {
	defer close(h.done)
	for d := range deliveries {
		d.Ack()
		h.dispatch(d.Event)
	}
}

// ownerOf reads the owner from a job event's payload.
func ownerOf(e events.Event) string {
	var d struct {
		Owner string `json:"owner"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return ""
	}
	return d.Owner
}

func (h *hub) dispatch(e events.Event) {
	if !h.dedup.Mark(e.ID) {
		h.log.Debug("skipping redelivered event", "event", e.ID, "type", e.Type)
		return
	}
	h.metrics.eventsReceived.WithLabelValues(string(e.Type)).Inc()
	b, err := json.Marshal(e)
	if err != nil {
		h.log.Warn("cannot encode event", "event", e.ID, "err", err)
		return
	}
	msg := streamMsg{ID: e.ID, Type: string(e.Type), Subject: e.Subject, JSON: b}
	owner := ownerOf(e)
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if !c.wants(owner, e.Subject) {
			continue
		}
		select {
		case c.ch <- msg:
		default:
			delete(h.clients, c)
			c.drop(reasonSlow)
			h.metrics.streamClients.WithLabelValues(c.transport).Dec()
			h.metrics.clientsDropped.WithLabelValues(c.transport, "slow").Inc()
			h.log.Warn("dropped slow stream client", "transport", c.transport, "user", c.user.Name, "buffer", h.buf)
		}
	}
}

var errHubClosed = errors.New("hub: closed")

// register adds a client for u, optionally restricted to one job.
func (h *hub) register(u *user, job, transport string) (*client, error) {
	c := &client{user: u, job: job, transport: transport, ch: make(chan streamMsg, h.buf), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errHubClosed
	}
	h.clients[c] = struct{}{}
	h.metrics.streamClients.WithLabelValues(transport).Inc()
	return c, nil
}

// unregister removes c (a no-op if the hub dropped it already).
func (h *hub) unregister(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		h.metrics.streamClients.WithLabelValues(c.transport).Dec()
	}
	c.drop("closed")
}

// closeClients drops every client and refuses new ones. The subscription
// keeps acknowledging deliveries until stop, so publishers never wait on
// the hub during shutdown.
func (h *hub) closeClients() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		delete(h.clients, c)
		c.drop(reasonShutdown)
		h.metrics.streamClients.WithLabelValues(c.transport).Dec()
	}
}

// stop ends the subscription and waits for the loop to finish.
func (h *hub) stop() {
	h.closeClients()
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
}

// clientCount returns the number of connected clients.
func (h *hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}
