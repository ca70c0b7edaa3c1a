package amqpbus_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/google/uuid"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/amqpbus"
	"github.com/cosmic-horizons/horizons/events/bustest"
)

// uri returns the broker of HORIZONS_AMQP_URL (default: the local RabbitMQ,
// guest/guest). It skips when no broker answers, unless
// HORIZONS_REQUIRE_SERVICES=1, when that is a failure.
func uri(t *testing.T) string {
	t.Helper()
	u := os.Getenv("HORIZONS_AMQP_URL")
	if u == "" {
		u = "amqp://guest:guest@127.0.0.1:5672/"
	}
	tr, err := amqpbus.New(u, nil)
	if err != nil {
		if os.Getenv("HORIZONS_REQUIRE_SERVICES") == "1" {
			t.Fatalf("RabbitMQ unreachable and HORIZONS_REQUIRE_SERVICES=1: %v", err)
		}
		t.Skipf("RabbitMQ unreachable (set HORIZONS_AMQP_URL): %v", err)
	}
	_ = tr.Close()
	return u
}

// Test queues expire a minute after their last consumer leaves, so test runs
// do not pile up durable queues on the broker.
func cfg(group string) *amqpbus.Config {
	return &amqpbus.Config{ConsumerGroup: group, QueueExpiry: time.Minute}
}

func newTransport(t *testing.T, u, group string) *amqpbus.Transport {
	t.Helper()
	tr, err := amqpbus.New(u, cfg(group))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestConformance(t *testing.T) {
	u := uri(t)
	bustest.Run(t, bustest.Harness{
		New: func(t *testing.T) (message.Publisher, message.Subscriber) {
			tr := newTransport(t, u, "bustest")
			return tr.Publisher(), tr.Subscriber()
		},
		Watermill: func(t *testing.T) (message.Publisher, message.Subscriber) {
			tr := newTransport(t, u, "suite")
			return tr.Publisher(), tr.Subscriber()
		},
		ConsumerGroup: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			tr := newTransport(t, u, group)
			return tr.Publisher(), tr.Subscriber()
		},
		Features: tests.Features{
			ConsumerGroups:                      true,
			ExactlyOnceDelivery:                 false,
			GuaranteedOrder:                     true,
			GuaranteedOrderWithSingleSubscriber: true,
			Persistent:                          true,
			ForceShort:                          true,
		},
	})
}

func TestGroupsEachGetEveryEvent(t *testing.T) {
	u := uri(t)
	topic := "groups_" + uuid.NewString()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ins []<-chan events.Delivery
	for _, g := range []string{"metrics", "audit"} {
		bus, err := amqpbus.NewBus(u, cfg(g))
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close()
		in, err := bus.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	pub, err := amqpbus.NewBus(u, cfg("publisher"))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var sent []string
	for seq := int64(1); seq <= 3; seq++ {
		e := bustest.JobEvent(t, events.JobProgress, "job-g", seq)
		if err := pub.Publish(ctx, topic, e); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e.ID)
	}
	for gi, in := range ins {
		for i, id := range sent {
			select {
			case d := <-in:
				if d.Event.ID != id {
					t.Fatalf("group %d event %d: %s, want %s", gi, i, d.Event.ID, id)
				}
				d.Ack()
			case <-time.After(30 * time.Second):
				t.Fatalf("group %d got %d of 3 events", gi, i)
			}
		}
	}
}

func TestConfigAndURIErrors(t *testing.T) {
	cases := map[string]func() error{
		`scheme "http"`: func() error { _, err := amqpbus.New("http://h/", nil); return err },
		"ConsumerGroup": func() error { _, err := amqpbus.New("amqp://h/", &amqpbus.Config{ConsumerGroup: "a b"}); return err },
		"must not be negative": func() error {
			_, err := amqpbus.New("amqp://h/", &amqpbus.Config{Prefetch: -1})
			return err
		},
		`prefetch="lots"`: func() error { _, err := amqpbus.OpenURL("amqp://h/?prefetch=lots", nil); return err },
	}
	for want, f := range cases {
		if err := f(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error mentioning %s, got %v", want, err)
		}
	}
	// A wrong password: the error must not repeat it.
	_, err := amqpbus.New("amqp://guest:s3cr3t-pw@127.0.0.1:1/", nil)
	if err == nil || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("dial error %v leaks the password or is nil", err)
	}
}

func TestOpenURL(t *testing.T) {
	u := uri(t)
	bus, err := amqpbus.OpenURL(u+"?group=url_test&prefetch=10&queue_expiry=1m", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkThroughput compares raw watermill-amqp with the SDK path on the
// local RabbitMQ, same settings. Run:
// go test -run '^$' -bench Throughput ./events/amqpbus/
func BenchmarkThroughput(b *testing.B) {
	u := os.Getenv("HORIZONS_AMQP_URL")
	if u == "" {
		u = "amqp://guest:guest@127.0.0.1:5672/"
	}
	for _, publishers := range []int{1, 8} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			bustest.Bench(b, func(b *testing.B) (message.Publisher, message.Subscriber) {
				tr, err := amqpbus.New(u, cfg("bench"))
				if err != nil {
					b.Skipf("RabbitMQ unreachable: %v", err)
				}
				return tr.Publisher(), tr.Subscriber()
			}, publishers)
		})
	}
}
