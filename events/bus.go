package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
)

// BusConfig configures a Bus. The zero value is usable.
type BusConfig struct {
	// Codec encodes events; nil means JSONCodec.
	Codec Codec
	// Catalogue validates events before publishing; nil means
	// DefaultCatalogue(). Set SkipValidation to publish unknown types.
	Catalogue *Catalogue
	// SkipValidation disables payload validation on Publish (the envelope
	// is still checked).
	SkipValidation bool
	// Logger receives decode failures on Subscribe; nil means slog.Default().
	Logger *slog.Logger
}

// Bus publishes and subscribes to events over any watermill transport.
// Publish validates each event against the catalogue before encoding it, so
// an invalid event is an error to the caller and never reaches the wire. A Bus
// is safe for concurrent use.
type Bus struct {
	pub   message.Publisher
	sub   message.Subscriber
	codec Codec
	cat   *Catalogue
	skip  bool
	log   *slog.Logger

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NewBus returns a Bus over the transport pub and sub. Either may be nil for
// a publish-only or subscribe-only bus. The Bus owns neither: Close closes
// both.
func NewBus(pub message.Publisher, sub message.Subscriber, cfg *BusConfig) *Bus {
	if cfg == nil {
		cfg = &BusConfig{}
	}
	b := &Bus{pub: pub, sub: sub, codec: cfg.Codec, cat: cfg.Catalogue, skip: cfg.SkipValidation, log: cfg.Logger}
	if b.codec == nil {
		b.codec = JSONCodec{}
	}
	if b.cat == nil {
		b.cat = DefaultCatalogue()
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	return b
}

// Catalogue returns the catalogue the bus validates against.
func (b *Bus) Catalogue() *Catalogue { return b.cat }

// Codec returns the bus codec.
func (b *Bus) Codec() Codec { return b.codec }

// Publisher returns the underlying watermill publisher.
func (b *Bus) Publisher() message.Publisher { return b.pub }

// Subscriber returns the underlying watermill subscriber.
func (b *Bus) Subscriber() message.Subscriber { return b.sub }

// Validate checks e as Publish would.
func (b *Bus) Validate(e Event) error {
	if b.skip {
		return e.ValidateEnvelope()
	}
	return b.cat.Validate(e)
}

// Publish validates and publishes evs to topic, in order. Nothing is
// published if any event is invalid: the error wraps ErrInvalidEvent or
// ErrUnknownType and names the field. The context is attached to every
// message so transports that honour it (membus, for one) stop waiting when it
// is done; it is also checked between messages, so a cancelled Publish sends
// a prefix of evs and returns ctx.Err().
func (b *Bus) Publish(ctx context.Context, topic string, evs ...Event) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if b.pub == nil {
		return fmt.Errorf("events: publish to %q: bus has no publisher", topic)
	}
	if topic == "" {
		return fmt.Errorf("%w: topic is empty", ErrInvalidEvent)
	}
	msgs := make([]*message.Message, 0, len(evs))
	jc, fast := b.codec.(JSONCodec)
	for _, e := range evs {
		var m *message.Message
		if b.skip {
			if err := e.ValidateEnvelope(); err != nil {
				return err
			}
			var err error
			if m, err = b.codec.Marshal(e); err != nil {
				return err
			}
		} else {
			obj, err := b.cat.validate(e)
			if err != nil {
				return err
			}
			if fast {
				m, err = jc.marshalValidated(e, obj)
			} else {
				m, err = b.codec.Marshal(e)
			}
			if err != nil {
				return err
			}
		}
		m.SetContext(ctx)
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.pub.Publish(topic, m); err != nil {
			if b.closed.Load() {
				return fmt.Errorf("%w: publish %s to %q: %w", ErrClosed, m.UUID, topic, err)
			}
			return fmt.Errorf("events: publish %s to %q: %w", m.UUID, topic, err)
		}
	}
	return nil
}

// Delivery is one received event. Exactly one of Ack or Nack must be called;
// a Nack asks the transport to redeliver.
type Delivery struct {
	Event Event
	msg   *message.Message
}

// Ack acknowledges the delivery.
func (d Delivery) Ack() { d.msg.Ack() }

// Nack asks for redelivery.
func (d Delivery) Nack() { d.msg.Nack() }

// Message returns the transport message the event came in.
func (d Delivery) Message() *message.Message { return d.msg }

// Subscribe returns the events arriving on topic until ctx is done or the bus
// is closed, when the channel is closed. Messages that cannot be decoded are
// logged and acknowledged so that they do not block the stream; use a router
// with a poison queue (NewRouter) to keep them instead.
func (b *Bus) Subscribe(ctx context.Context, topic string) (<-chan Delivery, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if b.sub == nil {
		return nil, fmt.Errorf("events: subscribe to %q: bus has no subscriber", topic)
	}
	msgs, err := b.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("events: subscribe to %q: %w", topic, err)
	}
	out := make(chan Delivery)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				e, err := b.codec.Unmarshal(m)
				if err != nil {
					b.log.Warn("events: dropping undecodable message", "topic", topic, "uuid", m.UUID, "err", err)
					m.Ack()
					continue
				}
				select {
				case out <- Delivery{Event: e, msg: m}:
				case <-ctx.Done():
					m.Nack()
					return
				}
			}
		}
	}()
	return out, nil
}

// Close closes the publisher and the subscriber (once, when they are the
// same value). It does not wait for Publish calls in flight: they return an
// error wrapping ErrClosed once the transport is closed. Later calls return
// ErrClosed. It is safe to call Close more than once; every call returns the
// first call's result.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		var errs []error
		if b.pub != nil {
			errs = append(errs, b.pub.Close())
		}
		if b.sub != nil && any(b.sub) != any(b.pub) {
			errs = append(errs, b.sub.Close())
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}
