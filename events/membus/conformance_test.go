package membus_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/cosmic-horizons/horizons/events/bustest"
	"github.com/cosmic-horizons/horizons/events/membus"
)

func TestConformance(t *testing.T) {
	bustest.Run(t, bustest.Harness{
		// The SDK checks run on the default configuration.
		New: func(t *testing.T) (message.Publisher, message.Subscriber) {
			tr := membus.New(nil)
			return tr, tr
		},
		// Watermill's suite publishes before it subscribes, so it needs the
		// persistent mode; a short publish timeout lets its TestMessageCtx,
		// which publishes twice before reading, go on while the messages
		// stay queued.
		Watermill: func(t *testing.T) (message.Publisher, message.Subscriber) {
			tr := membus.New(&membus.Config{Persistent: true, PublishTimeout: 100 * time.Millisecond})
			return tr, tr
		},
		Features: tests.Features{
			ConsumerGroups:        false,
			ExactlyOnceDelivery:   true,
			GuaranteedOrder:       false, // persistent replay is unordered; live order is PerJobOrder's job
			Persistent:            false,
			RequireSingleInstance: true,
			ForceShort:            true,
		},
	})
}
