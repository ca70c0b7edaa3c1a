package kafkabus_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cosmic-horizons/horizons/events/bustest"
	"github.com/cosmic-horizons/horizons/events/kafkabus"
)

// newCluster starts an in-process Kafka-protocol broker that creates topics
// on first use with 8 partitions.
func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(8))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// fastSarama shortens the intervals that make group joins and rebalances
// slow by default.
func fastSarama(c *sarama.Config) {
	c.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 6 * time.Second
	c.Consumer.Group.Rebalance.Timeout = 2 * time.Second
	c.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	c.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
}

func newTransport(t *testing.T, brokers []string, group string) *kafkabus.Transport {
	t.Helper()
	tr, err := kafkabus.New(brokers, &kafkabus.Config{ConsumerGroup: group, Sarama: fastSarama})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestConformance(t *testing.T) {
	brokers := newCluster(t).ListenAddrs()
	bustest.Run(t, bustest.Harness{
		New: func(t *testing.T) (message.Publisher, message.Subscriber) {
			tr := newTransport(t, brokers, "bustest-"+uuid.NewString())
			return tr.Publisher(), tr.Subscriber()
		},
		Watermill: func(t *testing.T) (message.Publisher, message.Subscriber) {
			tr := newTransport(t, brokers, "watermill-suite")
			return tr.Publisher(), tr.Subscriber()
		},
		ConsumerGroup: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			tr := newTransport(t, brokers, group)
			return tr.Publisher(), tr.Subscriber()
		},
		Features: tests.Features{
			ConsumerGroups:      true,
			ExactlyOnceDelivery: false,
			GuaranteedOrder:     false, // order is per key (job), checked by PerJobOrder
			Persistent:          true,
			ForceShort:          true,
		},
	})
}

// BenchmarkThroughput compares raw watermill-kafka with the SDK path on the
// in-process kfake broker (which shares the CPU with the client). Run:
// go test -run '^$' -bench Throughput ./events/kafkabus/
func BenchmarkThroughput(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(8))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, publishers := range []int{1, 8} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			bustest.Bench(b, func(b *testing.B) (message.Publisher, message.Subscriber) {
				tr, err := kafkabus.New(c.ListenAddrs(), &kafkabus.Config{ConsumerGroup: "bench-" + uuid.NewString(), Sarama: fastSarama})
				if err != nil {
					b.Fatal(err)
				}
				return tr.Publisher(), tr.Subscriber()
			}, publishers)
		})
	}
}
