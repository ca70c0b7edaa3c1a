package amqpbus_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/cosmic-horizons/horizons/events/amqpbus"
	"github.com/cosmic-horizons/horizons/events/bustest"
)

// A consumer killed mid-stream on RabbitMQ loses nothing (its unacked
// messages go back to the group's queue), and its successor in the same
// group applies nothing twice. RabbitMQ puts the requeued messages back,
// but a prefetch of many means the successor can see some of them after
// later ones, so per-job order is not checked here.
func TestKillConsumerMidStream(t *testing.T) {
	u := uri(t)
	mk := func(t *testing.T, group string) *amqpbus.Transport {
		tr, err := amqpbus.New(u, cfg(group))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		return tr
	}
	bustest.KillConsumerMidStream(t, bustest.KillHarness{
		Publisher:  func(t *testing.T) message.Publisher { return mk(t, "publisher").Publisher() },
		Subscriber: func(t *testing.T, group string) message.Subscriber { return mk(t, group) },
		Topic:      "kill-" + uuid.NewString(),
	})
}
