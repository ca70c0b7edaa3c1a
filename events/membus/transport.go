package membus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/cosmic-horizons/horizons/events"
)

// DefaultPublishTimeout is the longest Publish waits for the subscribers of a
// topic to acknowledge a message when Config.PublishTimeout is zero.
const DefaultPublishTimeout = 30 * time.Second

// DefaultMaxPending is the number of messages a topic may hold waiting for
// acknowledgement when Config.MaxPending is zero.
const DefaultMaxPending = 10000

// Sentinel errors of this package, wrapped with %w.
var (
	// ErrPublishTimeout reports a message the subscribers did not
	// acknowledge within Config.PublishTimeout.
	ErrPublishTimeout = errors.New("membus: publish timed out waiting for subscribers")
	// ErrClosed reports an operation on a closed Transport. It wraps
	// events.ErrClosed.
	ErrClosed = fmt.Errorf("membus: transport closed: %w", events.ErrClosed)
	// ErrQueueFull reports a topic with Config.MaxPending messages still
	// waiting for their acknowledgement; the message was not queued.
	ErrQueueFull = errors.New("membus: topic queue full")
)

// Config configures a Transport. A nil *Config and the zero value mean the
// defaults documented on each field.
type Config struct {
	// PublishTimeout bounds how long Publish waits for every subscriber of
	// the topic to acknowledge one message, including the time spent queued
	// behind earlier messages of the same topic. Zero means
	// DefaultPublishTimeout; a negative value waits without limit (only the
	// message context and Close end the wait).
	PublishTimeout time.Duration
	// MaxPending bounds the messages of one topic that wait for their
	// acknowledgement (one handed to the subscribers, the rest queued
	// behind it, including those whose Publish already gave up). Beyond it
	// Publish fails at once with ErrQueueFull. Zero means
	// DefaultMaxPending.
	MaxPending int
	// Persistent keeps every published message in memory, forever, and
	// replays the backlog to each new subscriber, in no guaranteed order.
	// Default false: a message published while a topic has no subscriber is
	// dropped.
	Persistent bool
	// Logger receives the transport's logs (GoChannel's Info messages at
	// Debug); nil discards them.
	Logger *slog.Logger
	// Bus configures the Bus returned by NewBus; nil means events.NewBus
	// defaults (JSON codec, default catalogue).
	Bus *events.BusConfig
}

// Transport is the in-memory transport. It implements both
// message.Publisher and message.Subscriber; use one Transport for both sides,
// since messages do not cross Transport values. It is safe for concurrent
// use.
type Transport struct {
	gc         *gochannel.GoChannel
	timeout    time.Duration
	maxPending int

	mu      sync.Mutex
	tails   map[string]chan struct{} // per topic: closed when the last queued publish is done
	pending map[string]int           // per topic: messages queued or waiting for acks

	closed    atomic.Bool
	closeOnce sync.Once
}

var (
	_ message.Publisher  = (*Transport)(nil)
	_ message.Subscriber = (*Transport)(nil)
)

// New returns a Transport configured by cfg (nil means defaults).
func New(cfg *Config) *Transport {
	if cfg == nil {
		cfg = &Config{}
	}
	var logger watermill.LoggerAdapter = watermill.NopLogger{}
	if cfg.Logger != nil {
		// GoChannel logs every message published to a topic without
		// subscribers at Info; that is routine here, so it goes to Debug.
		logger = watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	}
	timeout := cfg.PublishTimeout
	if timeout == 0 {
		timeout = DefaultPublishTimeout
	}
	maxPending := cfg.MaxPending
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	return &Transport{
		gc: gochannel.NewGoChannel(gochannel.Config{
			BlockPublishUntilSubscriberAck: true,
			Persistent:                     cfg.Persistent,
		}, logger),
		timeout:    timeout,
		maxPending: maxPending,
		tails:      make(map[string]chan struct{}),
		pending:    make(map[string]int),
	}
}

// NewBus returns an events.Bus over a new Transport configured by cfg.
// Closing the Bus closes the Transport.
func NewBus(cfg *Config) *events.Bus {
	t := New(cfg)
	var bc *events.BusConfig
	if cfg != nil {
		bc = cfg.Bus
	}
	return events.NewBus(t, t, bc)
}

// Publisher returns t as a message.Publisher.
func (t *Transport) Publisher() message.Publisher { return t }

// Subscriber returns t as a message.Subscriber.
func (t *Transport) Subscriber() message.Subscriber { return t }

// Publish queues msgs on topic, in order, and for each message waits until
// every subscriber of topic has acknowledged it, until the message's context
// is done, or until the publish timeout, whichever comes first. A message
// whose wait ended early stays queued and is still delivered in its place;
// see the package documentation. It returns at the first message that fails.
func (t *Transport) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := t.publishOne(topic, m); err != nil {
			return err
		}
	}
	return nil
}

func (t *Transport) publishOne(topic string, m *message.Message) error {
	if t.closed.Load() {
		return ErrClosed
	}
	ctx := m.Context()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("membus: publish %s to %q: %w", m.UUID, topic, err)
	}

	// Chain this publish behind the previous one of the same topic, so the
	// topic's order is the order of the calls even after a caller gave up.
	t.mu.Lock()
	if t.pending[topic] >= t.maxPending {
		n := t.pending[topic]
		t.mu.Unlock()
		return fmt.Errorf("%w: topic %q has %d messages waiting for acknowledgement (MaxPending %d); message %s not queued",
			ErrQueueFull, topic, n, t.maxPending, m.UUID)
	}
	t.pending[topic]++
	prev := t.tails[topic]
	done := make(chan struct{})
	t.tails[topic] = done
	t.mu.Unlock()

	result := make(chan error, 1)
	go func() {
		defer func() {
			close(done)
			t.mu.Lock()
			if t.tails[topic] == done {
				delete(t.tails, topic)
			}
			t.pending[topic]--
			if t.pending[topic] == 0 {
				delete(t.pending, topic)
			}
			t.mu.Unlock()
		}()
		if prev != nil {
			<-prev
		}
		result <- t.gc.Publish(topic, m)
	}()

	var timeout <-chan time.Time
	if t.timeout > 0 {
		timer := time.NewTimer(t.timeout)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case err := <-result:
		if err != nil {
			if t.closed.Load() {
				return fmt.Errorf("membus: publish %s to %q: %w", m.UUID, topic, ErrClosed)
			}
			return fmt.Errorf("membus: publish %s to %q: %w", m.UUID, topic, err)
		}
		if t.closed.Load() {
			// GoChannel stops waiting for acks when it closes.
			return fmt.Errorf("membus: publish %s to %q: closed before subscribers acknowledged: %w", m.UUID, topic, ErrClosed)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("membus: publish %s to %q: %w", m.UUID, topic, ctx.Err())
	case <-timeout:
		return fmt.Errorf("%w: message %s on topic %q not acknowledged within %v", ErrPublishTimeout, m.UUID, topic, t.timeout)
	}
}

// Subscribe returns the messages published to topic from now on (and the
// stored backlog when Config.Persistent is set) until ctx is done or the
// Transport is closed. Every message must be acked or nacked; a nacked
// message is delivered again at once, and publishers of the topic wait
// meanwhile.
func (t *Transport) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if t.closed.Load() {
		return nil, ErrClosed
	}
	ch, err := t.gc.Subscribe(ctx, topic)
	if err != nil {
		if t.closed.Load() {
			return nil, fmt.Errorf("membus: subscribe to %q: %w", topic, ErrClosed)
		}
		return nil, fmt.Errorf("membus: subscribe to %q: %w", topic, err)
	}
	return ch, nil
}

// Close closes every subscription channel and releases publishers waiting
// for acknowledgements (they return an error wrapping ErrClosed). It is safe
// to call more than once.
func (t *Transport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		err = t.gc.Close()
	})
	return err
}
