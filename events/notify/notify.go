// Package notify is the notifications consumer of Cosmic Horizons: a
// watermill handler, in a consumer group of its own, that fans each job
// event out to the live channels (WebSocket, SSE) of the job's owner through
// a [Notifier].
//
// The consumer knows nothing about connections: the server's hub implements
// Notifier. Delivery from the transport is at least once, so the consumer
// remembers the ids of the events it passed on (a bounded window, see
// events.Deduplicator) and passes each event on once.
package notify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cosmic-horizons/horizons/events"
)

// DefaultGroup is the consumer group the notifications consumer joins.
const DefaultGroup = "horizons-notifications"

// Notifier delivers one event to the live channels of owner (and to anyone
// else allowed to watch, such as administrators). Notify must not block on a
// slow client: it is called from the consumer's handler.
type Notifier interface {
	Notify(ctx context.Context, owner string, ev events.Event) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, owner string, ev events.Event) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, owner string, ev events.Event) error {
	return f(ctx, owner, ev)
}

// Config configures a Consumer; nil or zero means the defaults.
type Config struct {
	// DedupWindow is the number of event ids remembered; zero means
	// events.DefaultDedupWindow.
	DedupWindow int
	// Types restricts the events passed on; empty means every event.
	Types []events.Type
}

// Consumer passes job events to a Notifier, once each.
type Consumer struct {
	n     Notifier
	dedup *events.Deduplicator
	types map[events.Type]bool
}

// New returns a Consumer that calls n.
func New(n Notifier, cfg *Config) (*Consumer, error) {
	if n == nil {
		return nil, fmt.Errorf("notify: New: notifier is nil")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	c := &Consumer{n: n, dedup: events.NewDeduplicator(cfg.DedupWindow)}
	if len(cfg.Types) > 0 {
		c.types = map[events.Type]bool{}
		for _, t := range cfg.Types {
			c.types[t] = true
		}
	}
	return c, nil
}

// Owner reads the owner of a job event from its payload (field "owner");
// empty when the payload has none.
func Owner(e events.Event) string {
	var d struct {
		Owner string `json:"owner"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return ""
	}
	return d.Owner
}

// Handle passes e to the Notifier unless it was passed on already or its
// type is filtered out. A Notifier error fails the handling, so the router
// retries it.
func (c *Consumer) Handle(ctx context.Context, e events.Event) error {
	if c.types != nil && !c.types[e.Type] {
		return nil
	}
	return c.dedup.Wrap(func(ctx context.Context, e events.Event) error {
		if err := c.n.Notify(ctx, Owner(e), e); err != nil {
			return fmt.Errorf("notify: event %s (%s) for owner %q: %w", e.ID, e.Type, Owner(e), err)
		}
		return nil
	})(ctx, e)
}

// Handler returns Handle as an events.HandlerFunc, for a router:
//
//	router.AddConsumerHandler("notifications", events.TopicJobs, sub, c.Handler().Watermill(nil))
func (c *Consumer) Handler() events.HandlerFunc { return c.Handle }
