// Package deadletters keeps the dead letters of Cosmic Horizons: the
// messages a router handler failed on every attempt, which events.NewRouter
// publishes to the dead-letter topic with the failure reason, origin topic,
// handler and attempt count in their metadata. A [Box] is the consumer of
// that topic: it stores each dead letter once (by its dead-letter id) in a
// SQL table (SQLite or PostgreSQL, through database/sql), and lists,
// inspects and replays them. Replaying publishes the original message again
// to the topic it came from, without the failure metadata; consumers that
// had applied it already skip it by event id.
package deadletters

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/horizons/events"
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DefaultTable is the table used when Config.Table is empty.
const DefaultTable = "dead_letters"

// DefaultGroup is the consumer group a Box reads the dead-letter topic in.
const DefaultGroup = "horizons-deadletters"

// Sentinel errors, wrapped with %w.
var (
	// ErrNotFound reports a dead letter id that is not stored.
	ErrNotFound = errors.New("deadletters: not found")
	// ErrNotDeadLetter reports a message without the dead-letter metadata.
	ErrNotDeadLetter = errors.New("deadletters: not a dead letter")
)

// Config configures a Box; nil or zero means the defaults.
type Config struct {
	// Dialect is SQLite or Postgres; empty means SQLite.
	Dialect string
	// Table is the table name; empty means DefaultTable.
	Table string
	// Codec decodes the events; nil means events.JSONCodec.
	Codec events.Codec
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Letter is one stored dead letter.
type Letter struct {
	// ID identifies the dead letter (events.MetaDeadLetterID, or the
	// message UUID when the router did not set one).
	ID string `json:"id"`
	// MessageUUID is the UUID of the original message.
	MessageUUID string `json:"message_uuid"`
	// EventID and EventType identify the event, when it decodes.
	EventID   string `json:"event_id,omitempty"`
	EventType string `json:"event_type,omitempty"`
	// Subject is the event's subject (the job id).
	Subject string `json:"subject,omitempty"`
	// Topic is the topic the message was consumed from.
	Topic string `json:"topic"`
	// Handler is the handler that failed.
	Handler string `json:"handler"`
	// Reason is the error of the last attempt.
	Reason string `json:"reason"`
	// Attempts is how many times the handler ran.
	Attempts int `json:"attempts"`
	// ReceivedAt is when the Box stored it.
	ReceivedAt time.Time `json:"received_at"`
	// Replays counts the replays; LastReplayAt is the last one.
	Replays      int        `json:"replays"`
	LastReplayAt *time.Time `json:"last_replay_at,omitempty"`
	// Event is the decoded event (nil when it does not decode; see
	// DecodeError).
	Event       *events.Event `json:"event,omitempty"`
	DecodeError string        `json:"decode_error,omitempty"`
	// Payload and Metadata are the message as received.
	Payload  []byte            `json:"payload"`
	Metadata map[string]string `json:"metadata"`
}

// Box stores, lists and replays dead letters. It is safe for concurrent
// use.
type Box struct {
	db      *sql.DB
	dialect string
	table   string
	codec   events.Codec
	now     func() time.Time
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// New returns a Box on db and creates its table if needed.
func New(ctx context.Context, db *sql.DB, cfg *Config) (*Box, error) {
	if db == nil {
		return nil, errors.New("deadletters: db is nil")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	b := &Box{db: db, dialect: cfg.Dialect, table: cfg.Table, codec: cfg.Codec, now: cfg.Now}
	if b.dialect == "" {
		b.dialect = SQLite
	}
	if b.dialect != SQLite && b.dialect != Postgres {
		return nil, fmt.Errorf("deadletters: Config.Dialect is %q, want %q or %q", b.dialect, SQLite, Postgres)
	}
	if b.table == "" {
		b.table = DefaultTable
	}
	if !tableName.MatchString(b.table) {
		return nil, fmt.Errorf("deadletters: Config.Table %q is not a plain SQL identifier", b.table)
	}
	if b.codec == nil {
		b.codec = events.JSONCodec{}
	}
	if b.now == nil {
		b.now = time.Now
	}
	ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	id TEXT PRIMARY KEY,
	message_uuid TEXT NOT NULL,
	event_id TEXT NOT NULL,
	event_type TEXT NOT NULL,
	subject TEXT NOT NULL,
	topic TEXT NOT NULL,
	handler TEXT NOT NULL,
	reason TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	payload TEXT NOT NULL,
	metadata TEXT NOT NULL,
	received_at TEXT NOT NULL,
	replays INTEGER NOT NULL DEFAULT 0,
	last_replay_at TEXT NOT NULL DEFAULT ''
)`, b.table)
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("deadletters: create table %s: %w", b.table, err)
	}
	return b, nil
}

// q rewrites ? placeholders as $n for PostgreSQL.
func (b *Box) q(query string) string {
	if b.dialect != Postgres {
		return query
	}
	out := make([]byte, 0, len(query)+8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			out = strconv.AppendInt(append(out, '$'), int64(n), 10)
			continue
		}
		out = append(out, query[i])
	}
	return string(out)
}

// Add stores the dead letter msg (as found on the dead-letter topic). It
// returns the stored id and whether it was new: a redelivered dead letter
// is stored once. A message without the dead-letter metadata is an error.
func (b *Box) Add(ctx context.Context, msg *message.Message) (string, bool, error) {
	dl, err := events.ParseDeadLetter(msg, b.codec)
	if err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrNotDeadLetter, err)
	}
	id := msg.Metadata.Get(events.MetaDeadLetterID)
	if id == "" {
		id = msg.UUID
	}
	md, err := json.Marshal(map[string]string(msg.Metadata))
	if err != nil {
		return "", false, fmt.Errorf("deadletters: encode metadata of %s: %w", id, err)
	}
	res, err := b.db.ExecContext(ctx, b.q(fmt.Sprintf(`INSERT INTO %s
(id, message_uuid, event_id, event_type, subject, topic, handler, reason, attempts, payload, metadata, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, b.table)),
		id, msg.UUID, dl.Event.ID, string(dl.Event.Type), dl.Event.Subject, dl.Topic, dl.Handler, dl.Reason, dl.Attempts,
		base64.StdEncoding.EncodeToString(msg.Payload), string(md), b.now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return "", false, fmt.Errorf("deadletters: store %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return id, n > 0, nil
}

// Handler returns a watermill handler that stores every message of the
// dead-letter topic; add it to a router on that topic in DefaultGroup.
// A message that is not a dead letter is refused with an error wrapping
// events.ErrPermanent.
func (b *Box) Handler() message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		_, _, err := b.Add(msg.Context(), msg)
		if errors.Is(err, ErrNotDeadLetter) {
			return fmt.Errorf("%w: %w", events.ErrPermanent, err)
		}
		return err
	}
}

const columns = "id, message_uuid, event_id, event_type, subject, topic, handler, reason, attempts, payload, metadata, received_at, replays, last_replay_at"

// ListQuery selects dead letters.
type ListQuery struct {
	// Topic and Handler restrict to one origin; empty means all.
	Topic, Handler string
	// Subject restricts to one job; empty means all.
	Subject string
	// Limit is the page size; zero means 100, at most 1000.
	Limit int
	// After continues a listing after this received_at/id position (the
	// ID of the last letter of the previous page).
	After string
}

// List returns dead letters, oldest first, without their payloads.
func (b *Box) List(ctx context.Context, lq ListQuery) ([]Letter, error) {
	if lq.Limit < 0 || lq.Limit > 1000 {
		return nil, fmt.Errorf("deadletters: ListQuery.Limit is %d, want 1 to 1000", lq.Limit)
	}
	if lq.Limit == 0 {
		lq.Limit = 100
	}
	where, args := "1=1", []any{}
	if lq.Topic != "" {
		where += " AND topic = ?"
		args = append(args, lq.Topic)
	}
	if lq.Handler != "" {
		where += " AND handler = ?"
		args = append(args, lq.Handler)
	}
	if lq.Subject != "" {
		where += " AND subject = ?"
		args = append(args, lq.Subject)
	}
	if lq.After != "" {
		where += fmt.Sprintf(" AND (received_at, id) > (SELECT received_at, id FROM %s WHERE id = ?)", b.table)
		args = append(args, lq.After)
	}
	args = append(args, lq.Limit)
	ls, err := b.query(ctx, b.q(fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY received_at, id LIMIT ?", columns, b.table, where)), args...)
	for i := range ls {
		ls[i].Payload = nil
	}
	return ls, err
}

// Get returns the dead letter id with its payload and decoded event, or an
// error wrapping ErrNotFound.
func (b *Box) Get(ctx context.Context, id string) (Letter, error) {
	ls, err := b.query(ctx, b.q(fmt.Sprintf("SELECT %s FROM %s WHERE id = ?", columns, b.table)), id)
	if err != nil {
		return Letter{}, err
	}
	if len(ls) == 0 {
		return Letter{}, fmt.Errorf("%w: dead letter %q", ErrNotFound, id)
	}
	return ls[0], nil
}

// Count returns the number of stored dead letters.
func (b *Box) Count(ctx context.Context) (int, error) {
	var n int
	if err := b.db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM %s", b.table)).Scan(&n); err != nil {
		return 0, fmt.Errorf("deadletters: count: %w", err)
	}
	return n, nil
}

// Replay publishes dead letter id again to the topic it was consumed from,
// through pub, and records the replay. The letter stays stored (a replay
// that fails again arrives as a new dead letter).
func (b *Box) Replay(ctx context.Context, id string, pub message.Publisher) (Letter, error) {
	l, err := b.Get(ctx, id)
	if err != nil {
		return Letter{}, err
	}
	msg := message.NewMessage(l.MessageUUID, l.Payload)
	for k, v := range l.Metadata {
		msg.Metadata.Set(k, v)
	}
	dl, err := events.ParseDeadLetter(msg, b.codec)
	if err != nil {
		return Letter{}, fmt.Errorf("deadletters: replay %s: %w", id, err)
	}
	if err := dl.Replay(pub); err != nil {
		return Letter{}, fmt.Errorf("deadletters: replay %s: %w", id, err)
	}
	now := b.now().UTC()
	if _, err := b.db.ExecContext(ctx, b.q(fmt.Sprintf("UPDATE %s SET replays = replays + 1, last_replay_at = ? WHERE id = ?", b.table)),
		now.Format(time.RFC3339Nano), id); err != nil {
		return Letter{}, fmt.Errorf("deadletters: record replay of %s (it was published): %w", id, err)
	}
	l.Replays++
	l.LastReplayAt = &now
	return l, nil
}

func (b *Box) query(ctx context.Context, query string, args ...any) ([]Letter, error) {
	rows, err := b.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("deadletters: query %s: %w", b.table, err)
	}
	defer rows.Close()
	var out []Letter
	for rows.Next() {
		var l Letter
		var payload, md, received, last string
		if err := rows.Scan(&l.ID, &l.MessageUUID, &l.EventID, &l.EventType, &l.Subject, &l.Topic, &l.Handler, &l.Reason,
			&l.Attempts, &payload, &md, &received, &l.Replays, &last); err != nil {
			return nil, fmt.Errorf("deadletters: scan: %w", err)
		}
		l.Payload, _ = base64.StdEncoding.DecodeString(payload)
		_ = json.Unmarshal([]byte(md), &l.Metadata)
		l.ReceivedAt, _ = time.Parse(time.RFC3339Nano, received)
		if last != "" {
			t, err := time.Parse(time.RFC3339Nano, last)
			if err == nil {
				l.LastReplayAt = &t
			}
		}
		msg := message.NewMessage(l.MessageUUID, l.Payload)
		for k, v := range l.Metadata {
			msg.Metadata.Set(k, v)
		}
		if e, err := b.codec.Unmarshal(msg); err == nil {
			l.Event = &e
		} else {
			l.DecodeError = err.Error()
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("deadletters: read %s: %w", b.table, err)
	}
	return out, nil
}
