package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/horizons/events"
)

// Defaults used where Config leaves a field zero.
const (
	DefaultConsumerGroup   = "horizons"
	DefaultClientID        = "horizons"
	DefaultPartitions      = 8
	DefaultNackResendSleep = 100 * time.Millisecond
)

// DefaultVersion is the Kafka protocol version used when Config.Version is
// zero.
var DefaultVersion = sarama.V3_6_0_0

// ErrClosed reports an operation on a closed Transport. It wraps
// events.ErrClosed.
var ErrClosed = fmt.Errorf("kafkabus: transport closed: %w", events.ErrClosed)

// Config configures a Transport. A nil *Config and the zero value mean the
// defaults documented on each field.
type Config struct {
	// ConsumerGroup is the group subscribers join; empty means
	// DefaultConsumerGroup.
	ConsumerGroup string
	// StartFromNewest makes a group with no committed offset start at the
	// newest message; the default is the oldest retained one.
	StartFromNewest bool
	// Version is the Kafka protocol version; zero means DefaultVersion.
	Version sarama.KafkaVersion
	// ClientID identifies the client to the brokers; empty means
	// DefaultClientID.
	ClientID string
	// Partitions and ReplicationFactor are used when SubscribeInitialize
	// creates a topic; zero means DefaultPartitions and 1.
	Partitions        int32
	ReplicationFactor int16
	// NackResendSleep is the wait before a nacked message is delivered
	// again; zero means DefaultNackResendSleep.
	NackResendSleep time.Duration
	// Sarama, when set, adjusts the sarama configuration of the publisher
	// and of the subscriber after the defaults are applied (timeouts, TLS,
	// SASL, heartbeat intervals).
	Sarama func(c *sarama.Config)
	// Logger receives the transport's logs; nil discards them.
	Logger *slog.Logger
	// Bus configures the Bus returned by NewBus; nil means events.NewBus
	// defaults.
	Bus *events.BusConfig
}

// Transport is the Kafka transport: a watermill-kafka publisher and
// subscriber over the same brokers. It implements message.Publisher,
// message.Subscriber and message.SubscribeInitializer.
type Transport struct {
	pub       *kafka.Publisher
	sub       *kafka.Subscriber
	pubClosed atomic.Bool
	subClosed atomic.Bool
}

var (
	_ message.Publisher            = (*Transport)(nil)
	_ message.Subscriber           = (*Transport)(nil)
	_ message.SubscribeInitializer = (*Transport)(nil)
)

// PartitionKey returns the Kafka key of msg: its events.MetaPartitionKey
// metadata (the job id), else its subject, else its UUID, so that messages
// without a key still spread over the partitions.
func PartitionKey(topic string, msg *message.Message) (string, error) {
	if k := msg.Metadata.Get(events.MetaPartitionKey); k != "" {
		return k, nil
	}
	if k := msg.Metadata.Get(events.MetaSubject); k != "" {
		return k, nil
	}
	return msg.UUID, nil
}

func saramaConfig(cfg *Config, forSubscriber bool) *sarama.Config {
	var c *sarama.Config
	if forSubscriber {
		c = kafka.DefaultSaramaSubscriberConfig()
		c.Consumer.Offsets.Initial = sarama.OffsetOldest
		if cfg.StartFromNewest {
			c.Consumer.Offsets.Initial = sarama.OffsetNewest
		}
	} else {
		c = kafka.DefaultSaramaSyncPublisherConfig()
		c.Producer.RequiredAcks = sarama.WaitForAll
	}
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	c.Version = DefaultVersion
	if cfg.Version != (sarama.KafkaVersion{}) {
		c.Version = cfg.Version
	}
	c.ClientID = DefaultClientID
	if cfg.ClientID != "" {
		c.ClientID = cfg.ClientID
	}
	if cfg.Sarama != nil {
		cfg.Sarama(c)
	}
	return c
}

// New connects a Transport to brokers. It fails when brokers is empty or the
// configuration is invalid, or when the publisher cannot reach any broker.
func New(brokers []string, cfg *Config) (*Transport, error) {
	cfg, err := check(brokers, cfg)
	if err != nil {
		return nil, err
	}
	pubCfg := saramaConfig(cfg, false)
	if err := pubCfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafkabus: publisher configuration: %w", err)
	}
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers: brokers, Marshaler: kafka.NewWithPartitioningMarshaler(PartitionKey), OverwriteSaramaConfig: pubCfg,
	}, logger(cfg))
	if err != nil {
		return nil, fmt.Errorf("kafkabus: publisher for %v: %w", brokers, err)
	}
	sub, err := newSubscriber(brokers, cfg)
	if err != nil {
		_ = pub.Close()
		return nil, err
	}
	return &Transport{pub: pub, sub: sub}, nil
}

// NewSubscriber returns a subscriber alone, in consumer group
// cfg.ConsumerGroup, for a consumer that needs its own group (every group
// reads every event once) without a publisher of its own. It implements
// message.SubscribeInitializer.
func NewSubscriber(brokers []string, cfg *Config) (message.Subscriber, error) {
	cfg, err := check(brokers, cfg)
	if err != nil {
		return nil, err
	}
	return newSubscriber(brokers, cfg)
}

func check(brokers []string, cfg *Config) (*Config, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafkabus: brokers is empty, want at least one host:port")
	}
	for i, b := range brokers {
		if b == "" {
			return nil, fmt.Errorf("kafkabus: brokers[%d] is empty", i)
		}
	}
	if cfg == nil {
		cfg = &Config{}
	}
	if cfg.Partitions < 0 {
		return nil, fmt.Errorf("kafkabus: Config.Partitions is %d, want > 0", cfg.Partitions)
	}
	if cfg.ReplicationFactor < 0 {
		return nil, fmt.Errorf("kafkabus: Config.ReplicationFactor is %d, want > 0", cfg.ReplicationFactor)
	}
	if cfg.NackResendSleep < 0 {
		return nil, fmt.Errorf("kafkabus: Config.NackResendSleep is %v, want >= 0", cfg.NackResendSleep)
	}
	return cfg, nil
}

func logger(cfg *Config) watermill.LoggerAdapter {
	if cfg.Logger != nil {
		return watermill.NewSlogLogger(cfg.Logger)
	}
	return watermill.NopLogger{}
}

func newSubscriber(brokers []string, cfg *Config) (*kafka.Subscriber, error) {
	subCfg := saramaConfig(cfg, true)
	if err := subCfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafkabus: subscriber configuration: %w", err)
	}
	group := cfg.ConsumerGroup
	if group == "" {
		group = DefaultConsumerGroup
	}
	partitions, replication := cfg.Partitions, cfg.ReplicationFactor
	if partitions == 0 {
		partitions = DefaultPartitions
	}
	if replication == 0 {
		replication = 1
	}
	nack := cfg.NackResendSleep
	if nack == 0 {
		nack = DefaultNackResendSleep
	}
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers: brokers, Unmarshaler: kafka.NewWithPartitioningMarshaler(PartitionKey), OverwriteSaramaConfig: subCfg,
		ConsumerGroup: group, NackResendSleep: nack,
		InitializeTopicDetails: &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: replication},
	}, logger(cfg))
	if err != nil {
		return nil, fmt.Errorf("kafkabus: subscriber for %v in group %q: %w", brokers, group, err)
	}
	return sub, nil
}

// NewBus returns an events.Bus over a new Transport. Closing the Bus closes
// the Transport.
func NewBus(brokers []string, cfg *Config) (*events.Bus, error) {
	t, err := New(brokers, cfg)
	if err != nil {
		return nil, err
	}
	var bc *events.BusConfig
	if cfg != nil {
		bc = cfg.Bus
	}
	return events.NewBus(t, t, bc), nil
}

// Publisher returns the publishing side of t. Its Close closes only the
// publisher; the subscriber keeps running.
func (t *Transport) Publisher() message.Publisher { return publisherSide{t} }

// Subscriber returns the subscribing side of t (it also implements
// message.SubscribeInitializer). Its Close closes only the subscriber.
func (t *Transport) Subscriber() message.Subscriber { return subscriberSide{t} }

type publisherSide struct{ t *Transport }

func (p publisherSide) Publish(topic string, msgs ...*message.Message) error {
	return p.t.Publish(topic, msgs...)
}
func (p publisherSide) Close() error { return p.t.closePublisher() }

type subscriberSide struct{ t *Transport }

func (s subscriberSide) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.t.Subscribe(ctx, topic)
}
func (s subscriberSide) SubscribeInitialize(topic string) error {
	return s.t.SubscribeInitialize(topic)
}
func (s subscriberSide) Close() error { return s.t.closeSubscriber() }

func (t *Transport) closePublisher() error {
	if t.pubClosed.Swap(true) {
		return nil
	}
	if err := t.pub.Close(); err != nil {
		return fmt.Errorf("kafkabus: close publisher: %w", err)
	}
	return nil
}

func (t *Transport) closeSubscriber() error {
	if t.subClosed.Swap(true) {
		return nil
	}
	if err := t.sub.Close(); err != nil {
		return fmt.Errorf("kafkabus: close subscriber: %w", err)
	}
	return nil
}

// Publish produces msgs to topic in order, each keyed by PartitionKey, and
// returns once the brokers have acknowledged every one (all in-sync replicas)
// or sarama's retries are exhausted. It does not watch the messages'
// contexts: a produce in flight cannot be withdrawn.
func (t *Transport) Publish(topic string, msgs ...*message.Message) error {
	if t.pubClosed.Load() {
		return ErrClosed
	}
	if err := t.pub.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("kafkabus: publish to %q: %w", topic, err)
	}
	return nil
}

// Subscribe joins the consumer group on topic and returns its messages until
// ctx is done or the Transport is closed. The group join completes in the
// background; messages produced meanwhile are not missed, because a new group
// starts from the oldest offset (unless Config.StartFromNewest).
func (t *Transport) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if t.subClosed.Load() {
		return nil, ErrClosed
	}
	ch, err := t.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafkabus: subscribe to %q: %w", topic, err)
	}
	return ch, nil
}

// SubscribeInitialize creates topic with Config.Partitions partitions if it
// does not exist.
func (t *Transport) SubscribeInitialize(topic string) error {
	if t.subClosed.Load() {
		return ErrClosed
	}
	if err := t.sub.SubscribeInitialize(topic); err != nil {
		return fmt.Errorf("kafkabus: create topic %q: %w", topic, err)
	}
	return nil
}

// Close closes the subscriber (ending every subscription) and the
// publisher. It is safe to call more than once.
func (t *Transport) Close() error {
	return errors.Join(t.closeSubscriber(), t.closePublisher())
}
