package sqlbus

import (
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// SQLiteSchema is the watermill-sql schema adapter for SQLite. Messages get
// an AUTOINCREMENT offset; SQLite has one writer at a time, so offsets become
// visible in the order they were assigned and a consumer reading "offset >
// last acked" never skips a message that commits late (the problem that
// PostgreSQL's schema solves with transaction ids).
type SQLiteSchema struct {
	// BatchSize is the number of messages read per query; zero means
	// DefaultBatchSize.
	BatchSize int
}

// MessagesTable returns the quoted table name of topic.
func (s SQLiteSchema) MessagesTable(topic string) string {
	return `"watermill_` + topic + `"`
}

// SchemaInitializingQueries implements wsql.SchemaAdapter.
func (s SQLiteSchema) SchemaInitializingQueries(params wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + s.MessagesTable(params.Topic) + ` (
		"offset" INTEGER PRIMARY KEY AUTOINCREMENT,
		"uuid" TEXT NOT NULL,
		"created_at" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
		"payload" BLOB,
		"metadata" TEXT
	)`}}, nil
}

// InsertQuery implements wsql.SchemaAdapter.
func (s SQLiteSchema) InsertQuery(params wsql.InsertQueryParams) (wsql.Query, error) {
	args := make([]any, 0, 3*len(params.Msgs))
	for _, m := range params.Msgs {
		md, err := json.Marshal(m.Metadata)
		if err != nil {
			return wsql.Query{}, fmt.Errorf("sqlbus: metadata of message %s: %w", m.UUID, err)
		}
		args = append(args, m.UUID, []byte(m.Payload), string(md))
	}
	q := `INSERT INTO ` + s.MessagesTable(params.Topic) + ` ("uuid", "payload", "metadata") VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?,?,?),", len(params.Msgs)), ",")
	return wsql.Query{Query: q, Args: args}, nil
}

// SelectQuery implements wsql.SchemaAdapter.
func (s SQLiteSchema) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	next, err := params.OffsetsAdapter.NextOffsetQuery(wsql.NextOffsetQueryParams{Topic: params.Topic, ConsumerGroup: params.ConsumerGroup})
	if err != nil {
		return wsql.Query{}, err
	}
	batch := s.BatchSize
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	q := `SELECT "offset", "uuid", "payload", "metadata" FROM ` + s.MessagesTable(params.Topic) +
		` WHERE "offset" > (` + next.Query + `) ORDER BY "offset" ASC LIMIT ` + fmt.Sprint(batch)
	return wsql.Query{Query: q, Args: next.Args}, nil
}

// UnmarshalMessage implements wsql.SchemaAdapter.
func (s SQLiteSchema) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var r wsql.Row
	var uuid string
	var md stdsql.NullString
	if err := params.Row.Scan(&r.Offset, &uuid, &r.Payload, &md); err != nil {
		return wsql.Row{}, fmt.Errorf("sqlbus: scan message row: %w", err)
	}
	r.UUID = []byte(uuid)
	msg := message.NewMessage(uuid, r.Payload)
	if md.Valid && md.String != "" {
		if err := json.Unmarshal([]byte(md.String), &msg.Metadata); err != nil {
			return wsql.Row{}, fmt.Errorf("sqlbus: metadata of message %s is not JSON: %w", uuid, err)
		}
		r.Metadata = []byte(md.String)
	}
	r.Msg = msg
	return r, nil
}

// SubscribeIsolationLevel implements wsql.SchemaAdapter: SQLite transactions
// are serializable.
func (s SQLiteSchema) SubscribeIsolationLevel() stdsql.IsolationLevel {
	return stdsql.LevelSerializable
}

// SQLiteOffsets is the watermill-sql offsets adapter for SQLite: one row per
// consumer group with the last acknowledged offset.
type SQLiteOffsets struct{}

// OffsetsTable returns the quoted offsets table name of topic.
func (a SQLiteOffsets) OffsetsTable(topic string) string {
	return `"watermill_offsets_` + topic + `"`
}

// SchemaInitializingQueries implements wsql.OffsetsAdapter.
func (a SQLiteOffsets) SchemaInitializingQueries(params wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + a.OffsetsTable(params.Topic) + ` (
		"consumer_group" TEXT NOT NULL PRIMARY KEY,
		"offset_acked" INTEGER NOT NULL DEFAULT 0,
		"offset_consumed" INTEGER NOT NULL DEFAULT 0
	)`}}, nil
}

// NextOffsetQuery implements wsql.OffsetsAdapter.
func (a SQLiteOffsets) NextOffsetQuery(params wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `SELECT COALESCE((SELECT "offset_acked" FROM ` + a.OffsetsTable(params.Topic) + ` WHERE "consumer_group" = ?), 0)`,
		Args:  []any{params.ConsumerGroup},
	}, nil
}

// AckMessageQuery implements wsql.OffsetsAdapter.
func (a SQLiteOffsets) AckMessageQuery(params wsql.AckMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `INSERT INTO ` + a.OffsetsTable(params.Topic) + ` ("consumer_group", "offset_acked", "offset_consumed") VALUES (?, ?, ?)
			ON CONFLICT ("consumer_group") DO UPDATE SET "offset_acked" = excluded."offset_acked", "offset_consumed" = excluded."offset_consumed"`,
		Args: []any{params.ConsumerGroup, params.LastRow.Offset, params.LastRow.Offset},
	}, nil
}

// ConsumedMessageQuery implements wsql.OffsetsAdapter; SQLite needs none.
func (a SQLiteOffsets) ConsumedMessageQuery(params wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

// BeforeSubscribingQueries implements wsql.OffsetsAdapter.
func (a SQLiteOffsets) BeforeSubscribingQueries(params wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{{
		Query: `INSERT INTO ` + a.OffsetsTable(params.Topic) + ` ("consumer_group") VALUES (?) ON CONFLICT DO NOTHING`,
		Args:  []any{params.ConsumerGroup},
	}}, nil
}
