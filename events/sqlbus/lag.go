package sqlbus

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// Lag returns how many messages of topic consumer group group has not yet
// acknowledged: those after the group's acked offset (all of them when the
// group has acked none). A topic whose tables do not exist yet has no lag.
// On PostgreSQL, where the order is by transaction and then offset, the
// count is approximate while transactions are still committing.
func Lag(ctx context.Context, db *stdsql.DB, dialect, group, topic string) (int64, error) {
	var msgs, offs, q string
	switch dialect {
	case "", Postgres:
		msgs = wsql.DefaultPostgreSQLSchema{}.MessagesTable(topic)
		offs = wsql.DefaultPostgreSQLOffsetsAdapter{}.MessagesOffsetsTable(topic)
		q = `SELECT COUNT(*) FROM ` + msgs + ` WHERE "offset" > COALESCE((SELECT offset_acked FROM ` + offs + ` WHERE consumer_group = $1), 0)`
	case SQLite:
		msgs = SQLiteSchema{}.MessagesTable(topic)
		offs = SQLiteOffsets{}.OffsetsTable(topic)
		q = `SELECT COUNT(*) FROM ` + msgs + ` WHERE "offset" > COALESCE((SELECT "offset_acked" FROM ` + offs + ` WHERE "consumer_group" = ?), 0)`
	default:
		return 0, fmt.Errorf("sqlbus: Lag: dialect is %q, want %q or %q", dialect, Postgres, SQLite)
	}
	var n int64
	err := db.QueryRowContext(ctx, q, group).Scan(&n)
	if err != nil && isNoTable(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlbus: lag of group %q on %q: %w", group, topic, err)
	}
	return n, nil
}

func isNoTable(err error) bool {
	if errors.Is(err, stdsql.ErrNoRows) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "no such table") || strings.Contains(s, "SQLSTATE 42P01")
}
