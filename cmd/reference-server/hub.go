package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/cosmic-horizons/horizons/events"
)

// Hub defaults; hubConfig's zero values mean these.
const (
	// defaultClientBuffer is how many messages a stream client may fall
	// behind before the hub drops it.
	defaultClientBuffer = 256
	// defaultStreamWindow is how many messages the hub retains for
	// resuming clients.
	defaultStreamWindow = 8192
	// defaultConnsPerUser bounds one user's concurrent stream connections.
	defaultConnsPerUser = 32
)

// Reasons a client leaves the hub, sent to the client where the transport
// allows it.
const (
	reasonSlow     = "client too slow: more than its buffer of messages behind; reconnect with epoch and offset to resume"
	reasonShutdown = "server shutting down"
)

// Control message types. They share the stream with the job events and
// carry the stream position too; their type never collides with an event
// type because events are "job.*" and "workflow.*".
const (
	// noticeConnected is the first message of every stream: the client is
	// caught up to its position (after the replay, on a resume).
	noticeConnected = "stream.connected"
	// noticeResync tells a resuming client that its position is gone (too
	// old for the retained window, or from an earlier server epoch): it
	// must reload state over REST and continue from the new position.
	noticeResync = "stream.resync"
)

var (
	errHubClosed = errors.New("hub: closed")
	// errTooManyStreams is returned by register when a user has reached
	// the connection limit.
	errTooManyStreams = errors.New("hub: too many stream connections")
)

// position is a place in the hub's stream: an epoch (random, new on every
// start, so positions from an earlier process are recognised) and an
// offset that increases by one with every message the hub accepts. This
// is the offset + epoch scheme Centrifugo uses for channel history.
type position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// String renders p as "epoch:offset", the SSE id form.
func (p position) String() string { return p.Epoch + ":" + strconv.FormatUint(p.Offset, 10) }

// parsePosition reads "epoch:offset" (field names the source for errors).
func parsePosition(field, s string) (position, error) {
	e, o, ok := strings.Cut(s, ":")
	if !ok || e == "" {
		return position{}, badRequest(field, "%s %q: want epoch:offset as sent in the stream", field, s)
	}
	n, err := strconv.ParseUint(o, 10, 64)
	if err != nil {
		return position{}, badRequest(field, "%s %q: offset %q is not a non-negative integer", field, s, o)
	}
	return position{Epoch: e, Offset: n}, nil
}

// streamMsg is one message of the stream, encoded once for every client.
// JSON is the event envelope with a "stream" member holding its position.
type streamMsg struct {
	Offset   uint64
	ID       string
	Type     string
	Subject  string
	Owner    string
	Workflow string
	JSON     []byte
}

// notice is a control message for one client.
type notice struct {
	Type     string   `json:"type"`
	Stream   position `json:"stream"`
	Resumed  bool     `json:"resumed"`
	Replayed int      `json:"replayed"`
	Reason   string   `json:"reason,omitempty"`
}

// subscription selects what a client receives. Empty Jobs and Workflows
// mean every job the user may see; otherwise a message matches when its
// job is in Jobs or its workflow in Workflows. The owner check applies on
// top of both, always.
type subscription struct {
	Jobs      map[string]bool
	Workflows map[string]bool
}

// client is one WebSocket or SSE connection.
type client struct {
	user      *user
	sub       subscription
	transport string
	ch        chan *streamMsg

	// Set by register, read by the connection's writer before ch.
	replay []*streamMsg
	hello  notice

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

func (c *client) wants(m *streamMsg) bool {
	if len(c.sub.Jobs) > 0 || len(c.sub.Workflows) > 0 {
		match := c.sub.Jobs[m.Subject] ||
			(m.Workflow != "" && c.sub.Workflows[m.Workflow]) ||
			(strings.HasPrefix(m.Type, "workflow.") && c.sub.Workflows[m.Subject])
		if !match {
			return false
		}
	}
	return c.user.isAdmin() || (m.Owner != "" && c.user.ID == m.Owner)
}

// hubConfig sizes the hub; zero values mean the defaults above.
type hubConfig struct {
	// Buffer is the per-client queue length.
	Buffer int
	// Window is how many messages are retained for resuming clients.
	Window int
	// ConnsPerUser bounds one user's concurrent streams.
	ConnsPerUser int
}

// hub subscribes once to the job topic and fans every event out to the
// stream clients allowed to see it, WebSocket and SSE alike. It never
// blocks on a client: each has a bounded buffer, and a client whose buffer
// is full is dropped, so one slow reader cannot delay the others or the
// bus. Every message gets the next offset of the hub's stream and is kept
// in a ring of the last Window messages, so a client that reconnects with
// its last position receives what it missed, in order, or a resync notice.
// Deliveries are acknowledged as soon as they arrive; redeliveries are
// recognised by event id and skipped. Other consumers (notifications) feed
// it through Notify.
type hub struct {
	bus     *events.Bus
	topic   string
	log     *slog.Logger
	metrics *metrics
	cfg     hubConfig
	dedup   *events.Deduplicator
	epoch   string

	mu      sync.Mutex
	clients map[*client]struct{}
	perUser map[string]int
	ring    []*streamMsg // offset o lives at ring[(o-1)%len(ring)]
	last    uint64       // offset of the newest message; 0 before the first
	closed  bool

	cancel context.CancelFunc
	done   chan struct{}
}

func newHub(bus *events.Bus, topic string, log *slog.Logger, m *metrics, cfg hubConfig) *hub {
	if cfg.Buffer <= 0 {
		cfg.Buffer = defaultClientBuffer
	}
	if cfg.Window <= 0 {
		cfg.Window = defaultStreamWindow
	}
	if cfg.ConnsPerUser <= 0 {
		cfg.ConnsPerUser = defaultConnsPerUser
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &hub{
		bus: bus, topic: topic, log: log.With("component", "hub"), metrics: m, cfg: cfg,
		dedup:   events.NewDeduplicator(0),
		epoch:   hex.EncodeToString(b[:]),
		clients: map[*client]struct{}{},
		perUser: map[string]int{},
		ring:    make([]*streamMsg, cfg.Window),
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
		h.dispatch(d.Event, "")
	}
}

// eventMeta reads the owner and workflow from a job event's payload.
func eventMeta(e events.Event) (owner, workflow string) {
	var d struct {
		Owner      string `json:"owner"`
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return "", ""
	}
	return d.Owner, d.WorkflowID
}

// Notify implements notify.Notifier: the notifications consumer hands the
// hub each job event, and the hub fans it out to owner's streams (and the
// admins'), never blocking on a client. An event already seen (same id) is
// skipped. owner overrides the payload's owner when non-empty.
func (h *hub) Notify(ctx context.Context, owner string, e events.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.ID == "" || e.Type == "" {
		return fmt.Errorf("hub: notify: event id %q and type %q must both be set", e.ID, e.Type)
	}
	h.dispatch(e, owner)
	return nil
}

// encode renders e with its stream position as the first member.
func encode(e events.Event, p position) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	ps, _ := json.Marshal(p)
	out := make([]byte, 0, len(b)+len(ps)+12)
	out = append(out, `{"stream":`...)
	out = append(out, ps...)
	if len(b) > 2 {
		out = append(out, ',')
	}
	return append(out, b[1:]...), nil
}

func (h *hub) dispatch(e events.Event, owner string) {
	if !h.dedup.Mark(e.ID) {
		h.log.Debug("skipping redelivered event", "event", e.ID, "type", e.Type)
		return
	}
	h.metrics.eventsReceived.WithLabelValues(string(e.Type)).Inc()
	pOwner, workflow := eventMeta(e)
	if owner == "" {
		owner = pOwner
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b, err := encode(e, position{Epoch: h.epoch, Offset: h.last + 1})
	if err != nil {
		h.log.Warn("cannot encode event", "event", e.ID, "err", err)
		return
	}
	h.last++
	msg := &streamMsg{Offset: h.last, ID: e.ID, Type: string(e.Type), Subject: e.Subject, Owner: owner, Workflow: workflow, JSON: b}
	h.ring[(msg.Offset-1)%uint64(len(h.ring))] = msg
	for c := range h.clients {
		if !c.wants(msg) {
			continue
		}
		select {
		case c.ch <- msg:
		default:
			h.removeLocked(c, reasonSlow)
			h.metrics.clientsDropped.WithLabelValues(c.transport, "slow").Inc()
			h.log.Warn("dropped slow stream client", "transport", c.transport, "user", c.user.Name, "buffer", h.cfg.Buffer)
		}
	}
}

// removeLocked takes c out of the hub; h.mu is held.
func (h *hub) removeLocked(c *client, reason string) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	if h.perUser[c.user.ID]--; h.perUser[c.user.ID] <= 0 {
		delete(h.perUser, c.user.ID)
	}
	h.metrics.streamClients.WithLabelValues(c.transport).Dec()
	c.drop(reason)
}

// position returns the hub's current stream position.
func (h *hub) position() position {
	h.mu.Lock()
	defer h.mu.Unlock()
	return position{Epoch: h.epoch, Offset: h.last}
}

// register adds a client for u with subscription sub. With from set, the
// client resumes after that position: c.replay holds the retained
// messages after it that the client wants, in order, and c.hello says
// whether the resume worked or the client must resync. Registration and
// the replay snapshot happen under one lock with dispatch, so nothing
// falls between the replay and the live messages.
func (h *hub) register(u *user, sub subscription, transport string, from *position) (*client, error) {
	c := &client{user: u, sub: sub, transport: transport, ch: make(chan *streamMsg, h.cfg.Buffer), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errHubClosed
	}
	if n := h.perUser[u.ID]; n >= h.cfg.ConnsPerUser {
		h.metrics.clientsDropped.WithLabelValues(transport, "limit").Inc()
		return nil, fmt.Errorf("%w: user %q has %d open, the limit is %d", errTooManyStreams, u.Name, n, h.cfg.ConnsPerUser)
	}
	cur := position{Epoch: h.epoch, Offset: h.last}
	c.hello = notice{Type: noticeConnected, Stream: cur}
	if from != nil {
		switch oldest := h.oldestLocked(); {
		case from.Epoch != h.epoch:
			c.hello = notice{Type: noticeResync, Stream: cur, Reason: fmt.Sprintf("epoch %q is not the server's current epoch; reload and continue from the new position", from.Epoch)}
		case from.Offset > h.last:
			return nil, badRequest("offset", "offset %d is ahead of the stream (at %d)", from.Offset, h.last)
		case from.Offset+1 < oldest:
			c.hello = notice{Type: noticeResync, Stream: cur, Reason: fmt.Sprintf("offset %d is older than the retained window (oldest %d); reload and continue from the new position", from.Offset, oldest)}
		default:
			for o := from.Offset + 1; o <= h.last; o++ {
				if m := h.ring[(o-1)%uint64(len(h.ring))]; c.wants(m) {
					c.replay = append(c.replay, m)
				}
			}
			c.hello.Resumed = true
			c.hello.Replayed = len(c.replay)
		}
	}
	h.clients[c] = struct{}{}
	h.perUser[u.ID]++
	h.metrics.streamClients.WithLabelValues(transport).Inc()
	return c, nil
}

// oldestLocked is the oldest retained offset (last+1 when none).
func (h *hub) oldestLocked() uint64 {
	if w := uint64(len(h.ring)); h.last > w {
		return h.last - w + 1
	}
	return 1
}

// unregister removes c (a no-op if the hub dropped it already).
func (h *hub) unregister(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(c, "closed")
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
		h.removeLocked(c, reasonShutdown)
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
