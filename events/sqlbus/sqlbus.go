// Package sqlbus is the SQL event transport of Cosmic Horizons, built on
// watermill-sql v4 over database/sql: PostgreSQL (watermill-sql's own schema,
// which orders messages by transaction id so that concurrent publishers never
// make a consumer skip one) and SQLite (an adapter written here; watermill-sql
// ships none), the embedded default that needs no server.
//
// Every topic is a table of messages; each consumer group keeps its offset in
// an offsets table, so a restarted consumer resumes where its group stopped,
// and the members of a group take turns batch by batch (a second member adds
// no throughput). Because the messages live in the database, a publish can
// join the caller's transaction: that is how the job store's outbox hands its
// events to the bus without loss.
//
// # SQLite limits
//
// watermill-sql keeps a subscriber's read transaction open until every
// message of its batch is acknowledged, and SQLite has a single write lock,
// so on one SQLite database only one subscription makes progress at a time,
// and a subscription that waits for an ack stalls the others (and publishers,
// up to the busy timeout). Open SQLite with WAL, a busy timeout and
// transactions that lock at BEGIN:
//
//	file:bus.db?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_txlock=immediate
//
// (without _txlock=immediate, an offset update loses to a concurrent publish
// and the batch is delivered again, out of order). That suits the embedded,
// single-process default with a few consumers; use PostgreSQL beyond it. Two
// tests of watermill's suite that need concurrent subscriptions on one
// database are skipped on SQLite for this reason.
//
// The package brings no database driver; open the *sql.DB with the driver of
// your choice ("pgx" from github.com/jackc/pgx/v5/stdlib, "sqlite" from
// modernc.org/sqlite) and say which with Config.Dialect.
package sqlbus

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/horizons/events"
)

// Dialects.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// Defaults used where Config leaves a field zero.
const (
	DefaultConsumerGroup  = "horizons"
	DefaultPollInterval   = 50 * time.Millisecond
	DefaultBatchSize      = 100
	DefaultResendInterval = 100 * time.Millisecond
	DefaultAckDeadline    = 30 * time.Second
)

// ErrClosed reports an operation on a closed Transport. It wraps
// events.ErrClosed.
var ErrClosed = fmt.Errorf("sqlbus: transport closed: %w", events.ErrClosed)

// Config configures a Transport. A nil *Config and the zero value mean the
// defaults documented on each field.
type Config struct {
	// Dialect is Postgres or SQLite; empty means Postgres.
	Dialect string
	// ConsumerGroup is the group subscribers read as; empty means
	// DefaultConsumerGroup.
	ConsumerGroup string
	// PollInterval is the wait between queries when a topic has nothing new
	// (the idle latency); zero means DefaultPollInterval (watermill's is 1 s).
	PollInterval time.Duration
	// BatchSize is the number of messages read per query; zero means
	// DefaultBatchSize. A crash mid-batch redelivers up to a batch.
	BatchSize int
	// ResendInterval is the wait before a nacked message is delivered again;
	// zero means DefaultResendInterval.
	ResendInterval time.Duration
	// AckDeadline is how long a delivered message may stay unacknowledged
	// before it is nacked and delivered again; zero means
	// DefaultAckDeadline.
	AckDeadline time.Duration
	// Logger receives the transport's logs; nil discards them.
	Logger *slog.Logger
	// Bus configures the Bus returned by NewBus; nil means events.NewBus
	// defaults.
	Bus *events.BusConfig
}

type adapters struct {
	schema  wsql.SchemaAdapter
	offsets wsql.OffsetsAdapter
}

func adaptersFor(cfg *Config) (adapters, error) {
	batch := cfg.BatchSize
	if batch == 0 {
		batch = DefaultBatchSize
	}
	switch cfg.Dialect {
	case "", Postgres:
		return adapters{
			// BYTEA, not watermill's default JSON: payloads may be Avro.
			schema: wsql.DefaultPostgreSQLSchema{
				SubscribeBatchSize:  batch,
				GeneratePayloadType: func(string) string { return "BYTEA" },
			},
			offsets: wsql.DefaultPostgreSQLOffsetsAdapter{},
		}, nil
	case SQLite:
		return adapters{schema: SQLiteSchema{BatchSize: batch}, offsets: SQLiteOffsets{}}, nil
	}
	return adapters{}, fmt.Errorf("sqlbus: Config.Dialect is %q, want %q or %q", cfg.Dialect, Postgres, SQLite)
}

func check(db *stdsql.DB, cfg *Config) (*Config, adapters, error) {
	if db == nil {
		return nil, adapters{}, errors.New("sqlbus: db is nil")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	if cfg.PollInterval < 0 || cfg.BatchSize < 0 || cfg.ResendInterval < 0 || cfg.AckDeadline < 0 {
		return nil, adapters{}, fmt.Errorf("sqlbus: Config.PollInterval %v, BatchSize %d, ResendInterval %v and AckDeadline %v must not be negative",
			cfg.PollInterval, cfg.BatchSize, cfg.ResendInterval, cfg.AckDeadline)
	}
	a, err := adaptersFor(cfg)
	return cfg, a, err
}

func logger(cfg *Config) watermill.LoggerAdapter {
	if cfg.Logger != nil {
		return watermill.NewSlogLogger(cfg.Logger)
	}
	return watermill.NopLogger{}
}

// NewPublisher returns a publisher that writes to db, or to a transaction:
// pass wsql.TxFromStdSQL(tx) as exec to publish inside the caller's
// transaction (the outbox pattern); the topic's table must then exist
// already (SubscribeInitialize at start-up), since a transaction may not
// create tables. With db (exec nil) tables are created on first publish.
func NewPublisher(db *stdsql.DB, exec wsql.ContextExecutor, cfg *Config) (message.Publisher, error) {
	cfg, a, err := check(db, cfg)
	if err != nil {
		return nil, err
	}
	auto := exec == nil
	if exec == nil {
		exec = wsql.BeginnerFromStdSQL(db)
	}
	p, err := wsql.NewPublisher(exec, wsql.PublisherConfig{SchemaAdapter: a.schema, AutoInitializeSchema: auto}, logger(cfg))
	if err != nil {
		return nil, fmt.Errorf("sqlbus: publisher: %w", err)
	}
	return p, nil
}

func newSubscriber(db *stdsql.DB, cfg *Config, a adapters) (*wsql.Subscriber, error) {
	group := cfg.ConsumerGroup
	if group == "" {
		group = DefaultConsumerGroup
	}
	poll := cfg.PollInterval
	if poll == 0 {
		poll = DefaultPollInterval
	}
	resend := cfg.ResendInterval
	if resend == 0 {
		resend = DefaultResendInterval
	}
	deadline := cfg.AckDeadline
	if deadline == 0 {
		deadline = DefaultAckDeadline
	}
	s, err := wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db), wsql.SubscriberConfig{
		ConsumerGroup:    group,
		PollInterval:     poll,
		ResendInterval:   resend,
		RetryInterval:    poll,
		AckDeadline:      &deadline,
		SchemaAdapter:    a.schema,
		OffsetsAdapter:   a.offsets,
		InitializeSchema: true,
	}, logger(cfg))
	if err != nil {
		return nil, fmt.Errorf("sqlbus: subscriber in group %q: %w", group, err)
	}
	return s, nil
}

// Transport is the SQL transport: a publisher and a subscriber on one
// database. It implements message.Publisher, message.Subscriber and
// message.SubscribeInitializer. Closing it does not close the *sql.DB.
type Transport struct {
	pub       message.Publisher
	sub       *wsql.Subscriber
	pubClosed atomic.Bool
	subClosed atomic.Bool
}

var (
	_ message.Publisher            = (*Transport)(nil)
	_ message.Subscriber           = (*Transport)(nil)
	_ message.SubscribeInitializer = (*Transport)(nil)
)

// New returns a Transport on db.
func New(db *stdsql.DB, cfg *Config) (*Transport, error) {
	cfg, a, err := check(db, cfg)
	if err != nil {
		return nil, err
	}
	pub, err := NewPublisher(db, nil, cfg)
	if err != nil {
		return nil, err
	}
	sub, err := newSubscriber(db, cfg, a)
	if err != nil {
		_ = pub.Close()
		return nil, err
	}
	return &Transport{pub: pub, sub: sub}, nil
}

// NewBus returns an events.Bus over a new Transport on db.
func NewBus(db *stdsql.DB, cfg *Config) (*events.Bus, error) {
	t, err := New(db, cfg)
	if err != nil {
		return nil, err
	}
	var bc *events.BusConfig
	if cfg != nil {
		bc = cfg.Bus
	}
	return events.NewBus(t, t, bc), nil
}

// Publisher returns the publishing side of t; its Close closes only the
// publisher.
func (t *Transport) Publisher() message.Publisher { return publisherSide{t} }

// Subscriber returns the subscribing side of t (also a
// message.SubscribeInitializer); its Close closes only the subscriber.
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

// Publish inserts msgs into the topic's table in one statement.
func (t *Transport) Publish(topic string, msgs ...*message.Message) error {
	if t.pubClosed.Load() {
		return ErrClosed
	}
	if err := t.pub.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("sqlbus: publish to %q: %w", topic, err)
	}
	return nil
}

// Subscribe reads the topic as the consumer group from its stored offset.
func (t *Transport) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if t.subClosed.Load() {
		return nil, ErrClosed
	}
	ch, err := t.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("sqlbus: subscribe to %q: %w", topic, err)
	}
	return ch, nil
}

// SubscribeInitialize creates the topic's tables.
func (t *Transport) SubscribeInitialize(topic string) error {
	if t.subClosed.Load() {
		return ErrClosed
	}
	if err := t.sub.SubscribeInitialize(topic); err != nil {
		return fmt.Errorf("sqlbus: create tables of %q: %w", topic, err)
	}
	return nil
}

func (t *Transport) closePublisher() error {
	if t.pubClosed.Swap(true) {
		return nil
	}
	return t.pub.Close()
}

func (t *Transport) closeSubscriber() error {
	if t.subClosed.Swap(true) {
		return nil
	}
	return t.sub.Close()
}

// Close closes the subscriber (ending every subscription) and the publisher,
// not the database.
func (t *Transport) Close() error {
	return errors.Join(t.closeSubscriber(), t.closePublisher())
}
